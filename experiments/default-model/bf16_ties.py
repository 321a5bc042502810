"""Diagnostic: do a checkpoint's validation figures depend on scoring under bf16 autocast, the
precision `gmaiqa train` validates in (trainer.precision=bf16-mixed)? Scores the validation groups of
the recipe's cached mixture in fp32 and in bf16 and prints, for each, the figures and how many groups
have their top score shared by two or more images (a tie: the pick then falls to the first of them).

    uv run python experiments/default-model/bf16_ties.py MIXTURE_ROOT CKPT [CKPT ...]

MIXTURE_ROOT: the recipe's cached mixture (.gmaiqa_cache/synthetic/mixture-*), whose manifest holds the
splits."""

import sys
import time

import torch
from omegaconf import OmegaConf

from gmaiqa.checkpoints import load_net
from gmaiqa.data.dataset import load_dataset
from gmaiqa.scoring import test_checkpoint

torch.set_num_threads(2)
val = [s for s in load_dataset(sys.argv[1]) if s.split == "val"]

for ckpt in sys.argv[2:]:
    net, meta = load_net(ckpt)  # a GMANet: higher raw scores are clearer
    for precision in ("fp32", "bf16"):
        started = time.time()
        options = OmegaConf.create(
            {
                "accelerator": "cpu",
                "num_workers": 0,
                "resize": None,
                "block": None,
                "inference": {"precision": precision},
            }
        )
        metrics, rows = test_checkpoint(net, meta, val, options)
        tied = sum(r["predicted_scores"].count(max(r["predicted_scores"])) > 1 for r in rows)
        figures = {k: round(float(v), 3) for k, v in metrics.items()}
        print(
            f"{ckpt} {precision}: {figures}, top score tied in {tied} of {len(val)} groups, "
            f"{time.time() - started:.0f} s",
            flush=True,
        )
