"""Do ``inference.mode=window`` and ``inference.mode=full`` pick the same clearest image? (issue: fast
scoring, item 2). Scores the test groups of a trained checkpoint's own synthetic set and every group of
the synthetic leucorrhea and blood stand-ins (conf/eval_datasets/synthetic_presets.yaml) three ways:

* ``window, as trained`` - the checkpoint's recorded windows;
* ``window, paper layout`` - windows of half the image with a step of a quarter (12 windows, §5.3.1),
  at the checkpoint's image size;
* ``full`` - one pass over the whole image;

and prints per set and mode t0, t1, acc, SROCC, the share of groups where the mode picks the same image
as ``window, as trained``, and the scoring time relative to it.

    uv run python benchmarks/inference_agreement.py CKPT [--out benchmarks/results/inference_agreement.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from gmaiqa.checkpoints import load_net  # noqa: E402
from gmaiqa.data.datamodule import dataset_root  # noqa: E402
from gmaiqa.scoring import labelled_stacks, test_checkpoint  # noqa: E402


def datasets(meta: dict, cache_dir: str) -> dict[str, list]:
    data = meta["data"]
    synthetic = data["synthetic"]
    sets = {
        f"{synthetic['preset']} (test split)": labelled_stacks(
            dataset_root(None, synthetic, cache_dir),
            "headers",
            "test",
            data["split_ratios"],
            data["split_seed"],
        )
    }
    presets = OmegaConf.load(Path(__file__).parents[1] / "conf/eval_datasets/synthetic_presets.yaml")
    for name in ("leucorrhea", "blood"):
        spec = {**OmegaConf.to_container(presets[name].synthetic, resolve=False)}
        spec.update(height=synthetic["height"], width=synthetic["width"], images=synthetic["images"])
        root = dataset_root(None, spec, cache_dir)
        sets[f"{name} (all)"] = labelled_stacks(root, "headers", "all", (0.6, 0.2, 0.2), 0)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("ckpt")
    parser.add_argument("--cache-dir", default=".gmaiqa_cache")
    parser.add_argument("--out", default="benchmarks/results/inference_agreement.json")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    net, meta = load_net(args.ckpt)
    height, width = meta["data"]["resize"]
    modes = {
        "window, as trained": {},
        "window, paper layout": {
            "mode": "window",
            "patch": [height // 2, width // 2],
            "step": [height // 4, width // 4],
        },
        "full": {"mode": "full"},
    }
    rows = []
    for name, stacks in datasets(meta, args.cache_dir).items():
        picks, seconds = {}, {}
        for mode, inference in modes.items():
            options = OmegaConf.create(
                {
                    "accelerator": "cpu",
                    "num_workers": 0,
                    "resize": None,
                    "block": None,
                    "inference": inference,
                }
            )
            start = time.perf_counter()
            metrics, per_group = test_checkpoint(net, meta, stacks, options)
            seconds[mode] = time.perf_counter() - start
            picks[mode] = [r["predicted_clearest"] for r in per_group]
            reference = picks["window, as trained"]
            rows.append(
                {
                    "dataset": name,
                    "mode": mode,
                    "groups": metrics["groups"],
                    "t0": metrics["t0"],
                    "t1": metrics["t1"],
                    "acc": metrics["acc"],
                    "srocc": metrics.get("srocc", float("nan")),
                    "same_pick": sum(a == b for a, b in zip(picks[mode], reference)) / len(reference),
                    "time_ratio": seconds[mode] / seconds["window, as trained"],
                }
            )
    report("inference_agreement", rows, args.out)


if __name__ == "__main__":
    main()
