"""How many images of each stack a model calls clear: the band within ``model_vote.CLEAR_BAND`` points
of its top score, which ``shortlist:`` hands to the classical measure to order (experiments/default-model,
"The model and a measure, with the MobileNetV3"). Scores one set of a rendered draw with each checkpoint
as ``predict`` does and prints, per model, acc, the band's mean size and each group's band.

    uv run python experiments/default-model/clear_band.py SET_DIR [CKPT ...] [--out JSON]

SET_DIR is one preset of a draw rendered by ``benchmarks/default_scorer.py`` (``--work DIR``: DIR/feces).
CKPT defaults to the VGG16-BN the MobileNetV3 replaced and the shipped model (``default``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from default_scorer import scoring_options, set_stacks  # noqa: E402
from model_vote import clear_images  # noqa: E402

from gmaiqa.benchmark import run_checkpoint  # noqa: E402

PREVIOUS = "experiments/default-model/candidates/vgg16bn_ft_stack.pt"


def band_sizes(scores) -> list[int]:
    """Per stack, how many images ``shortlist`` hands the measure (the best included)."""
    return [int(clear_images(torch.as_tensor(curve)).sum()) for curve in scores]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set_dir", type=Path)
    parser.add_argument("checkpoints", nargs="*", default=[str(ROOT / PREVIOUS), "default"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    stacks = set_stacks(args.set_dir)
    every = frozenset(range(len(stacks)))
    record = {}
    for path in args.checkpoints:
        curves: dict = {}
        row = run_checkpoint(stacks, path, torch.device("cpu"), scoring_options(), curves, every, {})
        sizes = band_sizes([curves[row["method"]][i] for i in range(len(stacks))])
        record[path] = {"acc": row["acc"], "mean_band": sum(sizes) / len(sizes), "bands": sizes}
        print(f"{path}: acc {row['acc']:.2f}, mean band {sum(sizes) / len(sizes):.1f} images, {sizes}")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
