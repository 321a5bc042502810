"""Data-layer speed: local-max-gradient map vs a plain numpy reference, synthetic images per second, the
CPU cost of one training batch (7 images read, resized, z-scored, cropped, with their maps) by path -
maps in the loader, maps on the device, and the resized-image cache - and, when a GPU is present, its
training step and map computation beside it: does the loader keep up is (workers / CPU seconds per
batch) against (1 / step seconds).

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
from gmaiqa.data.synthetic import SynthConfig, config_from, render_group  # noqa: E402
from gmaiqa.data.synthetic_dataset import generate  # noqa: E402
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


def batch_cost(dm: FocusStackDataModule, batches: int) -> float:
    """CPU seconds to build one training batch in this process (no workers: the cost one worker pays)."""
    dm.setup("train")
    loader = dm.train_dataloader()
    iterator, done = iter(loader), 0
    next(iterator)  # first batch: opens files, fills the cache when there is one
    start = time.process_time()
    for _ in iterator:
        done += 1
        if done == batches:
            break
    return (time.process_time() - start) / done


def paper_batches(root, resize, crop, block, **options) -> FocusStackDataModule:
    """Training batches as §3.4 builds them (7 images: the clearest and six others, resized, cropped)."""
    return FocusStackDataModule(
        root=str(root), batch_size=7, resize=resize, crop=crop, block=block, validate="headers", **options
    )


def loader_rows(root, cache_dir, resize, crop, block, batches: int) -> list[dict]:
    """What one training batch (7 images: read, resize, z-score, crop, map) costs the CPU, by path."""
    common = dict(num_workers=0, split_ratios=(1.0, 0.0, 0.0), cache_dir=str(cache_dir))
    paths = {
        "maps in the loader (before)": dict(maps_on_device=False),
        "maps on the device": dict(maps_on_device=True),
        "maps on the device + data.cache=resized": dict(maps_on_device=True, cache="resized"),
    }
    rows, before = [], None
    for name, options in paths.items():
        if options.get("cache"):  # a warm cache: the first epoch wrote it
            batch_cost(paper_batches(root, resize, crop, block, **common, **options), 10**6)
        seconds = batch_cost(paper_batches(root, resize, crop, block, **common, **options), batches)
        before = before or seconds
        rows.append(
            {
                "what": f"CPU per batch of 7 ({resize[0]}x{resize[1]} -> {crop[0]}x{crop[1]}), {name}",
                "seconds": seconds,
                "per_second": 1 / seconds,
                "ratio": before / seconds,
            }
        )
    return rows


def device_rows(resize, crop, block, device: str = "cuda") -> list[dict]:
    """Beside the loader: the GPU's training step on a batch of 7 crops, and the maps it now computes."""
    from gmaiqa.data.transforms import maps_from_context
    from gmaiqa.losses import GMANetLoss
    from gmaiqa.models import build_gmanet

    device = torch.device(device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    margin = max(block) // 2
    batch = {
        "attention_context": torch.randn(7, 1, crop[0] + 2 * margin, crop[1] + 2 * margin, device=device),
        "attention_spec": ("local_max", block, margin),
        "flips": torch.zeros(7, 3, dtype=torch.long),
    }
    maps = best_of(lambda: maps_from_context(batch), repeats=20)
    net = build_gmanet(mask_attention_depth=1).to(device).train()
    loss = GMANetLoss()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)
    image = torch.randn(7, 3, *crop, device=device)
    amap = maps_from_context(batch)
    scores, clearest = torch.rand(7, device=device) * 100, 0
    rows = []
    for precision, dtype in (("fp32", None), ("bf16-mixed", torch.bfloat16)):

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                terms = loss(net(image, amap), scores, clearest)
            terms["loss"].backward()
            optimizer.step()

        seconds = best_of(step, repeats=10, warmup=3)
        rows.append(
            {
                "what": f"GMANet training step, 7 x {crop[0]}x{crop[1]}, {precision}, {name}",
                "seconds": seconds,
                "per_second": 1 / seconds,
                "ratio": float("nan"),
            }
        )
    rows.append(
        {
            "what": f"attention maps of a batch of 7 crops + context on {name}",
            "seconds": maps,
            "per_second": 1 / maps,
            "ratio": float("nan"),
        }
    )
    return rows


def fit_wait_share(
    root, resize, crop, block, maps_on_device: bool, steps: int, precision: str, accelerator: str = "gpu"
) -> dict:
    """A Lightning fit of GMANet L1 on the GPU with data.num_workers=auto: the share of step time spent
    waiting for batches (gmaiqa.callbacks.data_wait) and the steps per second."""
    import lightning as L

    from gmaiqa.callbacks.data_epoch import DataEpoch
    from gmaiqa.callbacks.data_wait import DataWaitMonitor
    from gmaiqa.data.datamodule import loader_workers
    from gmaiqa.models import build_gmanet
    from gmaiqa.tasks.focus_quality import FocusQualityTask

    dm = paper_batches(
        root,
        resize,
        crop,
        block,
        split_ratios=(0.6, 0.4, 0.0),
        maps_on_device=maps_on_device,
        num_workers="auto",
    )
    monitor = DataWaitMonitor(warmup_steps=10)
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        max_steps=steps,
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        benchmark=True,
        callbacks=[DataEpoch(), monitor],
        use_distributed_sampler=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    task = FocusQualityTask(build_gmanet(mask_attention_depth=1), inference={"patch": list(crop)})
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    elapsed = time.perf_counter() - start
    return {"share": monitor.share, "steps_per_second": steps / elapsed, "workers": loader_workers("auto")}


def map_rows(quick: bool) -> list[dict]:
    """The local max gradient map: ours against the numpy reading of Eq. 1-6 (and on the GPU)."""
    rows = []
    h, w = (256, 384) if quick else (1024, 1536)
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
    return rows


def synth_rows(sh: int, sw: int) -> list[dict]:
    rows = []
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
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="benchmarks/results/bench_data.json")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--batches", type=int, default=6, help="training batches timed per path")
    parser.add_argument("--fit-steps", type=int, default=60, help="steps of the GPU fits")
    parser.add_argument("--groups", type=int, default=4, help="groups of the generated set")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU rows")
    args = parser.parse_args()
    sh, sw = (300, 400) if args.quick else (1200, 1600)
    rows = [] if args.gpu_only else map_rows(args.quick) + synth_rows(sh, sw)

    with tempfile.TemporaryDirectory() as tmp:
        groups = args.groups
        root = generate(
            config_from(preset="feces", groups=groups, height=sh, width=sw, images=(8, 8), seed=0),
            Path(tmp) / "d",
            workers=-1,
        )
        resize, crop = ((256, 384), (128, 192)) if args.quick else ((1024, 1536), (512, 768))
        block = (8, 8) if args.quick else (32, 32)
        if not args.gpu_only:
            rows += loader_rows(root, Path(tmp) / "cache", resize, crop, block, args.batches)
        if torch.cuda.is_available():
            rows += device_rows(resize, crop, block)
            for maps_on_device in (False, True):
                fit = fit_wait_share(root, resize, crop, block, maps_on_device, args.fit_steps, "bf16-mixed")
                where = "on the device" if maps_on_device else "in the loader (before)"
                rows.append(
                    {
                        "what": f"fit bf16-mixed, {fit['workers']} workers, maps {where}: share of step "
                        "time waiting for data (seconds column)",
                        "seconds": fit["share"],
                        "per_second": fit["steps_per_second"],
                        "ratio": float("nan"),
                    }
                )
    report("bench_data", rows, args.out)


if __name__ == "__main__":
    main()
