"""``gmaiqa export ckpt=PATH out=FILE format=onnx|torchscript|weights``: a checkpoint's Output1 as a
deployable file (``gmaiqa.exported`` reads it back, so that ``gmaiqa predict/eval ckpt=FILE`` score with it).

The graph takes what the data pipeline prepares - ``image`` (B, 3, H, W), the resized image z-scored
per channel, and, for a model with mask attention, ``attention`` (B, 1, H, W), the attention map of the
same pixels - with any height and width, and returns ``score`` (B,) (Output1, the improved GAP) and
``score_map`` (B, 1, H/16, W/16). Keeping the map an input keeps the graph to the network: the
preprocessing (bilinear resize, z-score, the map's kind and φ) is recorded in the file's metadata
(``gmaiqa`` JSON: an ONNX metadata property, a TorchScript extra file) beside the checkpoint's own
record, and gmaiqa applies it when it scores with the file. ``onnxruntime`` is an optional extra:
``uv run --extra onnx gmaiqa predict ckpt=model.onnx ...``.

``weights`` is no graph but the weights Output1 needs (trunk and head 1) with the same metadata, in
half precision where rounding them keeps every score within ``half_tolerance`` of the score scale of
fp32's (0.01: one point of the paper's 0-100) and the clearest image of every checked group the same,
rebuilt into the network by gmaiqa itself and run in fp32: the form of gmaiqa's shipped default model
(``gmaiqa.default_model``). Its metadata adds how the checkpoint was trained (``provenance``).

Why of the scale and not relative to each score: the paper's annotation runs down to 0 for the most
blurred images (§4.1), and a relative error there grows without bound while the image's place in the
ranking does not move - a good model would keep fp32 for scoring its worst images near 0. One point
of 100 is what a user reads off a score; the pick is what ``predict`` is for.
"""

from __future__ import annotations

import copy
import json
import tempfile
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from gmaiqa.checkpoints import checkpoint_path, load_net
from gmaiqa.data.stack import SCORE_SCALE
from gmaiqa.errors import ConfigError
from gmaiqa.export_target import check_export_target
from gmaiqa.exported import EXTRA_FILE, WEIGHTS_KEY, ExportedNet
from gmaiqa.inference import has_method
from gmaiqa.job import JOB
from gmaiqa.models.gmanet import improved_global_average_pool

EXAMPLE_SEED = 0  # of the inputs a graph is traced with and the stacks a weights file's half check scored


class Output1Graph(nn.Module):
    """The exported computation: Output1 and its score map, nothing of the auxiliary outputs."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor, attention: torch.Tensor | None = None):

        score_map = self.net.output1_map(image, attention)
        return improved_global_average_pool(score_map), score_map


def _example(meta: dict) -> tuple[int, int]:
    """An input size the exported graph is traced at (any multiple of 16 works afterwards)."""
    patch = (meta.get("inference") or {}).get("patch")
    resize = (meta.get("data") or {}).get("resize")
    return tuple(patch or resize or (64, 96))


def example_inputs(
    size: tuple[int, int], uses_map: bool, seed: int = EXAMPLE_SEED
) -> tuple[torch.Tensor, ...]:
    """Two z-scored-like images (and attention maps) of ``size``: what a graph is traced with."""
    g = torch.Generator().manual_seed(seed)
    inputs = (torch.randn(2, 3, *size, generator=g),)
    if uses_map:
        inputs += (torch.rand(2, 1, *size, generator=g),)
    return inputs


def export_checkpoint(ckpt: str | Path, out: str | Path, fmt: str, half_tolerance: float = 0.01) -> dict:
    """Write ``out`` (atomically) and return the metadata it carries."""
    # here, not at import: loads lightning, albumentations, torchmetrics ... only when this runs
    from gmaiqa.scoring import preprocess_of

    net, meta = load_net(ckpt)
    if isinstance(net, ExportedNet):
        raise ConfigError("ckpt", f"{ckpt} is already an exported model", "export the .ckpt it came from")
    if not has_method(net, "output1_map"):
        raise ConfigError(
            "ckpt",
            f"a {meta.get('family', 'this')} checkpoint has no Output1 score map to export",
            "export a GMANet checkpoint (model family gmanet)",
        )
    preprocess = preprocess_of(meta, DictConfig({}))
    uses_map = bool(net.uses_attention_map)
    record = {
        **meta,
        "exported_from": str(ckpt),
        "format": fmt,
        "inputs": ["image", "attention"] if uses_map else ["image"],
        "outputs": ["score", "score_map"],
        "preprocessing": {
            "resize": list(preprocess.resize) if preprocess.resize else None,
            "resize_interpolation": "bilinear",
            "zscore": "image: per channel over each image; attention map: of the z-scored BT.601 grey",
            "normalize": preprocess.normalize,  # stack: the statistics are those of the image's whole stack
            "attention": preprocess.attention,
            "block": list(preprocess.block),
        },
        "reduction": int(net.reduction),
        "receptive_field": int(net.receptive_field),
        "provenance": provenance(ckpt, meta),
    }
    if has_method(net, "without_auxiliary_outputs"):  # weights only Output1 needs
        net = net.without_auxiliary_outputs()
    graph = Output1Graph(net).eval()
    example = example_inputs(_example(meta), uses_map)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    if fmt == "onnx":
        _write_onnx(graph, example, partial, record)
    elif fmt == "weights":
        _write_weights(net, meta, partial, record, half_tolerance)
    else:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=FutureWarning)
            traced = torch.jit.trace(graph, example, check_trace=False)
            torch.jit.save(traced, str(partial), _extra_files={EXTRA_FILE: json.dumps(record)})
    partial.replace(out)
    return record


def provenance(ckpt: str | Path, meta: dict) -> dict:
    """How the checkpoint came about, for a file that travels without its run folder: the training
    command (``job.json`` of the run the checkpoint belongs to), seed, git commit and stage."""

    path = checkpoint_path(ckpt).resolve()
    job = next((p / JOB for p in path.parents if (p / JOB).is_file()), None)
    record = {"checkpoint": path.name, "stage": meta.get("stage"), "seed": meta.get("seed")}
    record["git_commit"] = meta.get("git_commit")
    if job is not None:
        written = json.loads(job.read_text())
        overrides = written.get("overrides")  # None: composed in-process, no command line to record
        record.update(
            command=" ".join(["gmaiqa train", *overrides]) if overrides is not None else None,
            run=job.parent.name,
            started=written.get("started"),
            git_dirty=written.get("git_dirty"),
            packages=written.get("packages"),
        )
    return record


HALF_CHECK_IMAGES = 5  # per group; one group per synthetic preset
HALF_CHECK_SIZE = (256, 384)  # the largest frame rendered: the check is about weights, not field of view


def half_check_recipe(meta: dict) -> dict:
    """What the half-precision check of a weights file scores: one synthetic group of every preset,
    rendered at the pixel size the checkpoint was trained at (its synthetic data's object scale, else
    the middle of its recorded pixel range) on frames no larger than HALF_CHECK_SIZE, and scored the
    checkpoint's own way. Real-looking stacks, not noise: random inputs moved fp16 scores 35x less
    than images do (2.0e-4 against 0.71 % for the first default model)."""
    # here, not at import: loads scipy, cv2 only when this runs
    from gmaiqa.data.specimen import REFERENCE_PIXEL_UM, REFERENCE_SIZE
    from gmaiqa.data.synthetic import PRESETS

    data = meta.get("data") or {}
    synthetic = (data.get("synthetic") or {}) if not data.get("root") else {}
    height = min(int(synthetic.get("height") or HALF_CHECK_SIZE[0]), HALF_CHECK_SIZE[0])
    width = min(int(synthetic.get("width") or HALF_CHECK_SIZE[1]), HALF_CHECK_SIZE[1])
    scale = synthetic.get("object_scale")
    if scale is None and synthetic.get("height"):
        scale = int(synthetic["height"]) / REFERENCE_SIZE[0]  # the generator's default (SynthConfig.scale)
    trained = meta.get("pixel_um") or {}
    if scale is None and trained.get("min") and trained.get("max"):
        scale = REFERENCE_PIXEL_UM / (trained["min"] * trained["max"]) ** 0.5
    return {
        "presets": sorted(PRESETS),
        "seed": EXAMPLE_SEED,
        "images": HALF_CHECK_IMAGES,
        "height": height,
        "width": width,
        "object_scale": None if scale is None else round(float(scale), 6),
    }


def half_check_stacks(recipe: dict, folder: Path) -> list:
    """The groups of ``recipe`` (``half_check_recipe``), rendered into ``folder``: a recorded check can
    be repeated from the file alone."""
    # here, not at import: loads scipy, cv2, tifffile only when this runs
    from gmaiqa.data.dataset import load_dataset
    from gmaiqa.data.synthetic import config_from
    from gmaiqa.data.synthetic_dataset import generate

    stacks = []
    for preset in recipe["presets"]:
        options = {k: recipe[k] for k in ("seed", "height", "width", "object_scale")}
        cfg = config_from(preset=preset, groups=1, images=[recipe["images"]] * 2, **options)
        stacks += load_dataset(generate(cfg, folder / preset))
    return stacks


def half_check_scores(net: nn.Module, meta: dict, stacks: list) -> list[list[float]]:
    """Output1's raw score of every image of ``stacks``, per group, as ``predict`` scores them (the
    checkpoint's preprocessing and inference settings), on the CPU in fp32."""
    # here, not at import: loads lightning, albumentations, torchmetrics ... only when this runs
    from gmaiqa.scoring import score_groups

    options = DictConfig({"num_workers": 0, "inference": {"precision": "fp32"}})
    scored = dict(score_groups(net, meta, stacks, options, torch.device("cpu"), desc="half-precision check"))
    return [scored[index].float().tolist() for index in range(len(stacks))]


def half_precision_error(net: nn.Module, meta: dict, tolerance: float) -> dict:
    """How far Output1 moves when every floating-point weight is rounded to fp16, over the stacks of
    ``half_check_recipe``: the largest absolute and relative score differences, in how many groups the
    clearest image stays the same, and whether that passes ``tolerance`` (of SCORE_SCALE, every pick
    kept). Recorded with the fp32 scores, so a loaded file can be checked again."""

    rounded = copy.deepcopy(net)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    recipe = half_check_recipe(meta)
    with tempfile.TemporaryDirectory(prefix="gmaiqa-half-check-") as folder:
        stacks = half_check_stacks(recipe, Path(folder))
        full = half_check_scores(net, meta, stacks)
        half = half_check_scores(rounded, meta, stacks)
    clearest = max if meta.get("higher_is_better", True) else min

    def pick(scores: list[float]) -> int:
        return clearest(range(len(scores)), key=scores.__getitem__)

    flat_full = torch.tensor([v for group in full for v in group])
    difference = (torch.tensor([v for group in half for v in group]) - flat_full).abs()
    check = {
        "max_abs": float(difference.max()),
        "max_rel": float((difference / flat_full.abs().clamp_min(1e-6)).max()),
        "same_pick": sum(pick(a) == pick(b) for a, b in zip(full, half)),
        "groups": len(full),
        "inputs": recipe,
        "fp32_scores": full,
        "tolerance": tolerance,
        "score_scale": SCORE_SCALE,
    }
    check["passed"] = check["max_abs"] <= tolerance * SCORE_SCALE and check["same_pick"] == check["groups"]
    return check


def _write_weights(net: nn.Module, meta: dict, path: Path, record: dict, tolerance: float) -> None:
    """Output1's weights; fp16 when the half check passes (``half_precision_error``), else fp32."""
    check = half_precision_error(net.eval(), meta, tolerance)
    dtype = torch.float16 if check["passed"] else torch.float32
    record.update(
        weights_dtype=str(dtype).removeprefix("torch."),
        half_check=check,
        model={**record["model"], "aux_outputs": False},
    )
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save({WEIGHTS_KEY: state, "meta": json.dumps(record)}, path)


def _write_onnx(graph: nn.Module, example: tuple, path: Path, record: dict) -> None:
    try:
        import onnx
    except ImportError:
        raise ConfigError(
            "format", "ONNX export needs the onnx extra", "run it as `uv run --extra onnx gmaiqa export ...`"
        ) from None
    names = ["image", "attention"][: len(example)]
    height, width = torch.export.Dim("height", min=32), torch.export.Dim("width", min=32)
    batch = torch.export.Dim("batch", min=1)
    dynamic = {name: {0: batch, 2: height, 3: width} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        # image and attention share their dynamic sizes, which the exporter reports name by name
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        program = torch.onnx.export(
            graph,
            example,
            input_names=names,
            output_names=["score", "score_map"],
            dynamic_shapes=dynamic,
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "gmaiqa", json.dumps(record)
    onnx.save(model, str(path))


def export(cfg: DictConfig) -> None:

    check_export_target(cfg)  # the checkpoint itself is read once, by export_checkpoint
    out = Path(cfg.out)
    record = export_checkpoint(cfg.ckpt, out, cfg.format, half_tolerance=cfg.half_tolerance)
    size = out.stat().st_size / 2**20
    precision = ""
    if "half_check" in record:
        check = record["half_check"]
        precision = (
            f"; {record['weights_dtype']} weights: on {check['groups']} synthetic groups (one per preset) "
            f"fp16 moves scores by at most {check['max_abs']:.3g} of {check['score_scale']:g} (tolerance "
            f"{check['tolerance'] * check['score_scale']:g}) and keeps the clearest image in "
            f"{check['same_pick']}"
        )
    print(
        f"exported Output1 of {cfg.ckpt} as {cfg.format} -> {out} ({size:.1f} MiB; inputs "
        f"{', '.join(record['inputs'])}; preprocessing in its metadata{precision})"
    )
