"""Where a data config's images are: ``data.root``, or the built-in synthetic set it describes (one
preset, or a mixture of several), generated into the cache on first use and reused afterwards; each
synthetic option checked, a mistake naming its full key. Light (no Lightning, no torch), so the
command-line checks can call it before a run exists."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm

from gmaiqa.data.cache import build_once, cached_dir
from gmaiqa.errors import ConfigError


def synthetic_members(synthetic: dict) -> list[dict] | None:
    """``data.synthetic.mixture``: the presets of a mixture, each with the shared options of
    ``data.synthetic`` under its own (None: one preset)."""
    mixture = synthetic.get("mixture")
    if not mixture:
        return None
    if not isinstance(mixture, list) or not all(isinstance(m, dict) for m in mixture):
        raise ConfigError(
            "data.synthetic.mixture",
            f"{mixture!r} is not a list of presets",
            "e.g. data.synthetic.mixture=[{preset:feces},{preset:fluorescence,seed:1}]",
        )
    shared = {k: v for k, v in synthetic.items() if k != "mixture"}
    return [{**shared, **member} for member in mixture]


def synthetic_root(cache_dir: str | Path, spec: dict) -> Path:

    members = synthetic_members(spec)
    if members:
        return cached_dir(cache_dir, "synthetic", "mixture", {"members": members})
    single = {k: v for k, v in spec.items() if k != "mixture"}  # the key of sets made before mixtures
    return cached_dir(cache_dir, "synthetic", spec.get("preset", "feces"), single)


def dataset_root(
    root: str | Path | None, synthetic: dict | None, cache_dir: str | Path, generate_now: bool = True
) -> Path:
    """The folder a data config points at: ``root``, or the synthetic set of ``synthetic`` (one preset,
    or a mixture; generated into the cache on first use, reused afterwards)."""
    if root is not None:
        return Path(root)
    if not synthetic:
        raise ConfigError(
            "data.root",
            "no dataset given",
            "set data.root=DIR (a folder with manifest.csv) or use data=synthetic",
        )
    synthetic = plain(synthetic)
    path = synthetic_root(cache_dir, synthetic)
    if generate_now:
        configs = synthetic_configs(synthetic)
        workers = synthetic.get("workers", -1)
        spec = configs if synthetic_members(synthetic) else configs[0]
        build_once(path, lambda folder: _generate_with_progress(spec, folder, path, workers))
    return path


def synthetic_configs(synthetic: dict, key: str = "data.synthetic") -> list:
    """The ``SynthConfig`` of a ``data.synthetic`` node (one per member of a mixture), each option
    checked; a mistake names its full key (``data.synthetic.mixture.2.exposure_drift``)."""
    # here, not at import: loads scipy, cv2, numpy only when this runs
    from gmaiqa.data.synthetic import config_from

    synthetic = plain(synthetic)
    members = synthetic_members(synthetic)
    configs = []
    for index, member in enumerate(members or [synthetic]):
        try:
            configs.append(
                config_from(**{k: v for k, v in member.items() if k not in ("workers", "mixture")})
            )
        except ConfigError as exc:
            own = members and exc.key in synthetic["mixture"][index]
            where = f"{key}.mixture.{index}" if own else key
            raise ConfigError(f"{where}.{exc.key}", exc.problem, exc.fix) from None
    return configs


def plain(value):
    """An OmegaConf node as plain dicts and lists (anything else as it is)."""

    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _generate_with_progress(spec, folder: Path, final: Path, workers: int) -> None:
    """First use of a synthetic set: say what is made, where, and show the images as they are written."""

    # here, not at import: loads scipy, cv2, tifffile ... only when this runs
    from gmaiqa.data.synthetic_dataset import generate, generate_mixture, image_progress

    members = spec if isinstance(spec, list) else [spec]
    made = ", ".join(
        f"{m.groups} {m.preset} groups of {m.height}x{m.width} ({m.images[0]}-{m.images[1]} images)"
        for m in members
    )
    kind = "mixture" if isinstance(spec, list) else f"{spec.preset} set"
    print(f"data: generating the synthetic {kind} once ({made}) into {final}; later runs reuse it")
    with tqdm(unit="image", desc="synthetic data") as bar:
        if isinstance(spec, list):
            generate_mixture(spec, folder, workers=workers, progress=image_progress(bar))
        else:
            generate(spec, folder, workers=workers, progress=image_progress(bar))
