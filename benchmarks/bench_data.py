"""Data-layer speed: local-max-gradient map vs a plain numpy reference, synthetic images per second,
training batches per second from the DataModule.

    uv run python benchmarks/bench_data.py [--out benchmarks/results/bench_data.json] [--quick]

Figures are ratios within one run; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import best_of, report  # noqa: E402

from gmaiqa.data.datamodule import FocusStackDataModule  # noqa: E402
from gmaiqa.data.synthetic import SynthConfig, config_from, generate, render_group  # noqa: E402
from gmaiqa.focus.gradient import local_max_gradient_map  # noqa: E402


def numpy_local_max(f: np.ndarray, h: int = 32, w: int = 32) -> np.ndarray:
    """The straightforward reading of Eq. 1-6: patch gradients (the two horizontal and the two vertical
    differences of each 2x2 patch), then a max over every centred block."""
    dx, dy = np.abs(np.diff(f, axis=1)), np.abs(np.diff(f, axis=0))
    g = (dx[:-1] + dx[1:] + dy[:, :-1] + dy[:, 1:]) / 4
    top, left = (h - 1) // 2, (w - 1) // 2
    g = np.pad(g, ((top, h - 1 - top), (left, w - 1 - left)))
    windows = np.lib.stride_tricks.sliding_window_view(g, (h - 1, w - 1))
    return windows.max(axis=(2, 3))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/bench_data.json")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    rows = []

    h, w = (256, 384) if args.quick else (1024, 1536)
    f = np.random.default_rng(0).random((h, w)).astype(np.float32)
    t = torch.from_numpy(f)[None, None]
    ours = best_of(lambda: local_max_gradient_map(t, (32, 32)), repeats=5)
    ref = best_of(lambda: numpy_local_max(f), repeats=1, warmup=0)
    np.testing.assert_allclose(
        local_max_gradient_map(t, (32, 32))[0, 0].numpy(), numpy_local_max(f), rtol=1e-6
    )
    rows.append(
        {
            "what": f"local-max map {h}x{w}, phi 32x32 (torch, separable)",
            "seconds": ours,
            "per_second": 1 / ours,
            "ratio": ref / ours,
        }
    )
    rows.append(
        {
            "what": f"local-max map {h}x{w}, phi 32x32 (numpy reference)",
            "seconds": ref,
            "per_second": 1 / ref,
            "ratio": 1.0,
        }
    )
    if torch.cuda.is_available():
        tc = t.cuda()
        gpu = best_of(lambda: local_max_gradient_map(tc, (32, 32)), repeats=20)
        rows.append(
            {
                "what": f"local-max map {h}x{w} on {torch.cuda.get_device_name(0)}",
                "seconds": gpu,
                "per_second": 1 / gpu,
                "ratio": ref / gpu,
            }
        )

    sh, sw = (300, 400) if args.quick else (1200, 1600)
    cfg = SynthConfig(preset="feces", height=sh, width=sw, images=(10, 10))
    start = time.perf_counter()
    images, _ = render_group(cfg, 0)
    synth = time.perf_counter() - start
    rows.append(
        {
            "what": f"synthetic feces images {sh}x{sw} (one process)",
            "seconds": synth / len(images),
            "per_second": len(images) / synth,
            "ratio": float("nan"),
        }
    )

    with tempfile.TemporaryDirectory() as tmp:
        groups = 4 if args.quick else 6
        root = generate(
            config_from(preset="feces", groups=groups, height=sh, width=sw, images=(10, 12), seed=0),
            Path(tmp) / "d",
            workers=-1,
        )
        resize, crop = ((256, 384), (128, 192)) if args.quick else ((1024, 1536), (512, 768))
        dm = FocusStackDataModule(
            root=str(root),
            batch_size=7,
            resize=resize,
            crop=crop,
            num_workers=2,
            split_ratios=(1.0, 0.0, 0.0),
        )
        dm.setup("train")
        loader = dm.train_dataloader()
        batches, start = 0, time.perf_counter()
        for epoch in range(2):
            loader.batch_sampler.set_epoch(epoch)
            for _ in loader:
                batches += 1
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "what": f"training batches of 7 ({resize[0]}x{resize[1]} -> {crop[0]}x{crop[1]}), 2 workers",
                "seconds": elapsed / batches,
                "per_second": batches / elapsed,
                "ratio": float("nan"),
            }
        )
    report("bench_data", rows, args.out)


if __name__ == "__main__":
    main()
