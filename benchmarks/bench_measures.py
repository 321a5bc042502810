"""Time per 1024x1536 image for every classical focus measure (the registry), on CPU and, when one is
present, on a GPU; a batch of 7 images (one training group) per call.

    uv run python benchmarks/bench_measures.py [--out benchmarks/results/bench_measures.json] [--repeats 3]

Compare measures within one run (ratios to TENG are printed); absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.focus import FOCUS_MEASURES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/bench_measures.json")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 1536))
    args = parser.parse_args()
    batch = 7
    # a real-looking stack image would not change the cost: every measure does the same work per pixel
    images = torch.rand(batch, 3, *args.size, generator=torch.Generator().manual_seed(0))
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        x = images.to(device)
        timings = {
            name: best_of(lambda m=m: m(x), repeats=args.repeats) / batch
            for name, m in FOCUS_MEASURES.items()
        }
        for name, seconds in timings.items():
            rows.append(
                {
                    "device": device.type,
                    "measure": name,
                    "ms_per_image": 1000 * seconds,
                    "x_TENG": seconds / timings["TENG"],
                }
            )
    report("bench_measures", rows, args.out)


if __name__ == "__main__":
    main()
