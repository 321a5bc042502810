"""Files ``gmaiqa export`` wrote, read back: which kind a file is, its metadata, and the network that
scores with it (``ExportedNet``: a TorchScript or ONNX graph, or a ``weights`` file rebuilt into its
network). ``gmaiqa.checkpoints`` reads them as it reads a ``.ckpt``; ``gmaiqa.export`` writes them."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from gmaiqa.errors import ConfigError, instantiate

EXTRA_FILE = "gmaiqa.json"
WEIGHTS_KEY = "gmaiqa_weights"  # the entry of a ``weights`` file that holds its state dict


def exported_format(path: str | Path) -> str | None:
    """``onnx`` or ``torchscript`` for a file ``gmaiqa export`` wrote, None for anything else."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix.lower() == ".onnx":
        return "onnx"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith(f"extra/{EXTRA_FILE}") for name in archive.namelist()):
                return "torchscript"
        if path.suffix.lower() == ".pt":  # torch.save's zip; a Lightning checkpoint ends in .ckpt
            return "weights"
    return None


class ExportedNet(nn.Module):
    """An exported file scored like a checkpoint's network (``output1``, ``output1_map``)."""

    def __init__(self, meta: dict):
        super().__init__()
        self.uses_attention_map = "attention" in meta["inputs"]
        self.reduction, self.receptive_field = meta["reduction"], meta["receptive_field"]

    def run(self, image: torch.Tensor, attention: torch.Tensor | None):
        raise NotImplementedError

    def output1_map(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(image, attention)[1]

    def output1(self, image: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        return self.run(image, attention)[0]


class TorchScriptNet(ExportedNet):
    def __init__(self, module: torch.jit.ScriptModule, meta: dict):
        super().__init__(meta)
        self.graph = module

    def run(self, image, attention):
        inputs = (image, attention) if self.uses_attention_map else (image,)
        return self.graph(*inputs)


class OnnxNet(ExportedNet):
    def __init__(self, path: Path, meta: dict):
        super().__init__(meta)
        # here, not at import: loads onnxruntime only when this runs
        import onnxruntime

        self.session = onnxruntime.InferenceSession(
            str(path), providers=onnxruntime.get_available_providers()
        )

    def run(self, image, attention):
        feeds = {"image": image.detach().float().cpu().numpy()}
        if self.uses_attention_map:
            feeds["attention"] = attention.detach().float().cpu().numpy()
        score, score_map = self.session.run(["score", "score_map"], feeds)
        return torch.from_numpy(score).to(image.device), torch.from_numpy(score_map).to(image.device)


def _read_weights(path: Path) -> dict:
    """A weights file's contents, its tensors memory-mapped: reading the metadata alone (the scoring
    commands' precheck, ``read_checkpoint``) does not read the weights."""
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            "ckpt", f"{path} cannot be read as a weights file ({reason[:160]})", "export it again"
        ) from None
    if not isinstance(content, dict) or WEIGHTS_KEY not in content:
        raise ConfigError(
            "ckpt",
            f"{path} was not written by `gmaiqa export format=weights`",
            "give a .ckpt written by `gmaiqa train`, or a file `gmaiqa export` wrote",
        )
    return content


def read_exported_meta(path: Path, fmt: str) -> dict:
    if fmt == "weights":
        return json.loads(_read_weights(path)["meta"])
    if fmt == "onnx":
        try:
            import onnx
        except ImportError:
            raise ConfigError(
                "ckpt",
                f"{path} is an ONNX model and the onnx extra is not installed",
                "use `uv run --extra onnx ...`",
            ) from None
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if "gmaiqa" not in props:
            raise ConfigError(
                "ckpt", f"{path} was not written by `gmaiqa export`", "export it with gmaiqa export"
            )
        return json.loads(props["gmaiqa"])
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(f"extra/{EXTRA_FILE}"))
        return json.loads(archive.read(name))


def weights_state(path: Path) -> dict:
    """A weights file's state dict as stored (fp16 where the export found it exact enough)."""
    return _read_weights(path)[WEIGHTS_KEY]


def load_weights(path: Path) -> tuple[nn.Module, dict]:
    """A ``weights`` file as the network it came from (Output1's path; fp32 on every device)."""

    content = _read_weights(path)
    meta = json.loads(content["meta"])
    model_cfg = dict(meta["model"])
    if isinstance(model_cfg.get("backbone"), dict):
        model_cfg["backbone"] = {**model_cfg["backbone"], "weights_path": None, "download": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the weights come from the file, not ImageNet
        net = instantiate(model_cfg)
    state = content[WEIGHTS_KEY]
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval(), meta


def load_exported(path: Path, fmt: str) -> tuple[nn.Module, dict]:
    if fmt == "weights":
        return load_weights(path)
    meta = read_exported_meta(path, fmt)
    if fmt == "onnx":
        return OnnxNet(path, meta), meta
    with warnings.catch_warnings():  # TorchScript is deprecated upstream: the file format still loads
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    return TorchScriptNet(module, meta), meta
