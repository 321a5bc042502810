"""gmaiqa synth out=DIR preset=NAME groups=N seed=S [workers=-1] (presets: gmaiqa.data.specimen.PRESETS)"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from gmaiqa.data.dataset import inspect_dataset
from gmaiqa.data.report import format_report
from gmaiqa.data.synthetic import PRESETS, config_from
from gmaiqa.data.synthetic_dataset import generate, image_progress
from gmaiqa.errors import ConfigError


def run(cfg: DictConfig) -> int:
    options = OmegaConf.to_container(cfg, resolve=True)
    out = options.pop("out", None)
    if not out:
        raise ConfigError("out", "no output folder", "pass out=DIR")
    workers = options.pop("workers")
    overwrite = options.pop("overwrite")
    synth_cfg = config_from(**options)
    print(
        f"synth: {synth_cfg.groups} {synth_cfg.preset} groups ({PRESETS[synth_cfg.preset].description}), "
        f"{synth_cfg.height}x{synth_cfg.width}, {synth_cfg.images[0]}-{synth_cfg.images[1]} images each "
        f"-> {out}"
    )
    with tqdm(unit="image", desc="synth") as bar:
        generate(synth_cfg, out, workers=workers, overwrite=overwrite, progress=image_progress(bar))
    report = inspect_dataset(out, validate="headers")
    print(format_report(report))
    return 0 if report.ok else 1
