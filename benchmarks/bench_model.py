"""GMANet forward time per 512x768 patch and per whole 1024x1536 image (12 patches in one batch,
§5.3.1; the paper reports 248 ms per image on an RTX 3090, 210 ms of it inference).

    uv run python benchmarks/bench_model.py [--quick] [--out benchmarks/results/bench_model.json]

CPU always; CUDA (fp32 and bf16 autocast) when a GPU is present. Times are best-of-N wall clock.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.focus.gradient import attention_map  # noqa: E402
from gmaiqa.inference import predict_scores  # noqa: E402
from gmaiqa.models import build_gmanet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="quarter-size inputs (smoke run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/bench_model.json")
    args = parser.parse_args()
    scale = 4 if args.quick else 1
    patch = (512 // scale, 768 // scale)
    image_size = (1024 // scale, 1536 // scale)
    step = (256 // scale, 256 // scale)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_gmanet(mask_attention_depth=1).eval()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        model = net.to(device)
        image = torch.randn(1, 3, *image_size, device=device)
        amap = attention_map(image, block=(32 // scale, 32 // scale))
        one = (image[..., : patch[0], : patch[1]], amap[..., : patch[0], : patch[1]])
        modes = [("fp32", None)] + ([("bf16", torch.bfloat16)] if device == "cuda" else [])
        for mode, dtype in modes:

            def run_patch():
                with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                    model(*one)

            def run_image():
                with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                    predict_scores(model, image, amap, patch, step, max_patches=12)

            def run_map():
                attention_map(image, block=(32 // scale, 32 // scale))

            t_patch = best_of(run_patch, args.repeats)
            t_image = best_of(run_image, args.repeats)
            t_map = best_of(run_map, args.repeats)
            name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
            rows.append(
                {
                    "device": name,
                    "precision": mode,
                    "patch": f"{patch[0]}x{patch[1]}",
                    "ms_per_patch": 1000 * t_patch,
                    "ms_per_image_12_patches": 1000 * t_image,
                    "ms_attention_map": 1000 * t_map,
                    "threads": torch.get_num_threads(),
                }
            )
    report("bench_model", rows, args.out)


if __name__ == "__main__":
    main()
