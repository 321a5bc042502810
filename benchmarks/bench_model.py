"""GMANet scoring time per 1024x1536 image, by scoring path (the paper reports 248 ms per image on an
RTX 3090, 210 ms of it inference, §5.3.1):

* ``all outputs, window`` - the path before Output1-only inference: the whole network, auxiliary
  outputs included, over the 12 windows of 512x768 (step 256);
* ``output1, window``     - the same windows, Output1 only (``inference.mode=window``);
* ``output1, full``       - one pass over the whole image (``inference.mode=full``).

    uv run python benchmarks/bench_model.py [--quick] [--repeats N] [--out FILE.json]
    uv run python benchmarks/bench_model.py --trunks [--quick]   # every trunk, -> bench_trunks.json

``--trunks``: GMANet L1 on every trunk of ``model/backbone`` (VGG16-BN, ResNet-50 and the light ones),
Output1 in one pass over the whole image as ``predict`` scores with a checkpoint (``prepare_model``:
BatchNorm folded, channels-last; fp32), its attention map included (``attention_ms``: the map alone);
``x_vgg16_bn`` is the speed-up over VGG16-BN and ``x_teng`` the time over Tenengrad's on the same image,
in this run. Each light trunk is measured twice: ``top_reduction`` 16 (the paper's 1/16 top stage,
dilated) and 32 (torchvision's own last stride, ``model.backbone.top_reduction=32``).

CPU always (fp32); on a GPU also bf16 and fp16 autocast, channels-last, and ``torch.compile`` on and
off. ``speedup`` is against ``all outputs, window`` on the same device and precision, in this run.
Times are best-of-N wall clock; ``--quick`` halves the image side.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.focus.gradient import attention_map  # noqa: E402
from gmaiqa.inference import InferenceSettings, predict_scores, prepare_model  # noqa: E402
from gmaiqa.models import build_gmanet  # noqa: E402


class AllOutputs(torch.nn.Module):
    """The network as scored before: its forward pass, auxiliary outputs included."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.uses_attention_map = net.uses_attention_map

    def forward(self, image, attention=None):
        return self.net(image, attention)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="half-size inputs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile on the GPU")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    parser.add_argument("--out", default="benchmarks/results/bench_model.json")
    parser.add_argument("--trunks", action="store_true", help="every trunk, output1 full, fp32")
    args = parser.parse_args()
    if args.trunks:
        return bench_trunks(args)
    scale = 2 if args.quick else 1
    window = InferenceSettings(
        patch=(512 // scale, 768 // scale), step=(256 // scale, 256 // scale), channels_last=False
    )
    size = (1024 // scale, 1536 // scale)
    block = (32 // scale, 32 // scale)
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in [d for d in devices if args.device in ("all", d)]:
        dev = torch.device(device)
        image = torch.randn(1, 3, *size, device=dev)
        amap = attention_map(image, block=block)
        threads = torch.get_num_threads()
        name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu, {threads} threads"
        variants = [("fp32", False, False), ("fp32", True, False)]
        if device == "cuda":
            variants += [("bf16", False, False), ("fp16", False, False), ("bf16", True, False)]
            variants += [] if args.no_compile else [("bf16", True, True)]
        baseline: dict[str, float] = {}
        for precision, channels_last, compiled in variants:
            options = {"precision": precision, "channels_last": channels_last, "compile": compiled}
            paths = [
                ("output1, window", replace(window, **options)),
                ("output1, full", replace(window, mode="full", **options)),
            ]
            if not channels_last and not compiled:
                paths.insert(0, ("all outputs, window", replace(window, precision=precision)))
            for path, settings in paths:
                model = prepare_model(fresh_gmanet(), settings, dev)
                scored = AllOutputs(model) if path.startswith("all") else model
                seconds = best_of(lambda: predict_scores(scored, image, amap, settings), args.repeats)
                if path.startswith("all"):
                    baseline[precision] = seconds
                rows.append(row(name, settings, path, size, seconds, baseline.get(precision)))
                torch._dynamo.reset()
        seconds = best_of(lambda: attention_map(image, block=block), args.repeats)
        rows.append(row(name, window, "attention map alone", size, seconds, None))
    report("bench_model", rows, args.out)


def fresh_gmanet(backbone: str = "vgg16_bn", **trunk_options) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = {"name": backbone, **trunk_options}
        return build_gmanet(backbone=spec, mask_attention_depth=1).eval()


def bench_trunks(args) -> None:
    from gmaiqa.focus import get_measure
    from gmaiqa.models.gmanet import TRUNKS
    from gmaiqa.models.light_trunks import LIGHT_TRUNKS, TOP_REDUCTIONS

    scale = 2 if args.quick else 1
    size, block = (1024 // scale, 1536 // scale), (32 // scale, 32 // scale)
    settings = InferenceSettings(mode="full")
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in [d for d in devices if args.device in ("all", d)]:
        dev = torch.device(device)
        image = torch.rand(1, 3, *size, device=dev)
        teng = get_measure("TENG")
        teng_seconds = best_of(lambda: teng(image), args.repeats)
        attention_seconds = best_of(lambda: attention_map(image, block=block), args.repeats)
        name = (
            torch.cuda.get_device_name(0) if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
        )
        vgg = None
        # the heavy trunks at the paper's 1/16; a light one also at torchvision's own 1/32 top stage
        variants = [("vgg16_bn", 16)] + [
            (trunk, top)
            for trunk in sorted(set(TRUNKS) - {"vgg16_bn"})
            for top in (TOP_REDUCTIONS if trunk in LIGHT_TRUNKS else (16,))
        ]
        for trunk, top in variants:
            net = fresh_gmanet(trunk, top_reduction=top) if trunk in LIGHT_TRUNKS else fresh_gmanet(trunk)
            params = sum(p.numel() for p in net.backbone.parameters()) + sum(
                p.numel() for p in net.head1.parameters()
            )
            model = prepare_model(net, settings, dev)
            seconds = best_of(
                lambda: predict_scores(model, image, attention_map(image, block=block), settings),
                args.repeats,
            )
            vgg = vgg or seconds
            rows.append(
                {
                    "device": name,
                    "trunk": trunk,
                    "top_reduction": top,
                    "output1_params_m": params / 1e6,
                    "image": f"{size[0]}x{size[1]}",
                    "ms_per_image": 1000 * seconds,
                    "attention_ms": 1000 * attention_seconds,
                    "x_vgg16_bn": vgg / seconds,
                    "x_teng": seconds / teng_seconds,
                }
            )
        rows.append(
            {
                "device": name,
                "trunk": "TENG (no network)",
                "top_reduction": None,
                "output1_params_m": 0.0,
                "image": f"{size[0]}x{size[1]}",
                "ms_per_image": 1000 * teng_seconds,
                "attention_ms": 0.0,
                "x_vgg16_bn": vgg / teng_seconds,
                "x_teng": 1.0,
            }
        )
    report("bench_trunks", rows, Path(args.out).with_name("bench_trunks.json"))


def row(device: str, settings: InferenceSettings, path: str, size, seconds: float, baseline) -> dict:
    return {
        "device": device,
        "precision": settings.precision,
        "channels_last": settings.channels_last,
        "compile": settings.compile,
        "path": path,
        "image": f"{size[0]}x{size[1]}",
        "ms_per_image": 1000 * seconds,
        "speedup": baseline / seconds if baseline else float("nan"),
    }


if __name__ == "__main__":
    main()
