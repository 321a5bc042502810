"""Diagnostic: does recomputing BatchNorm's statistics (a plain mean over every other training group's
full frames, instead of the running average of batches of one group each) change a checkpoint's
validation figures? If the running averages made L1's validation swing, they should rise.

    uv run python experiments/default-model/bn_recompute.py MIXTURE_ROOT CKPT [CKPT ...]

MIXTURE_ROOT: the recipe's cached mixture (.gmaiqa_cache/synthetic/mixture-*), whose manifest holds the
splits. Prints the validation figures as saved and with the statistics recomputed (fp32, 1 thread)."""

import sys
import time

import torch
from omegaconf import OmegaConf
from torch import nn

from gmaiqa.checkpoints import load_net
from gmaiqa.data.dataset import load_dataset
from gmaiqa.data.transforms import with_attention
from gmaiqa.inference import image_scores
from gmaiqa.scoring import loader_for, preprocess_of, test_checkpoint

torch.set_num_threads(1)
root = sys.argv[1]
stacks = load_dataset(root)
train = [s for s in stacks if s.split == "train"]
val = [s for s in stacks if s.split == "val"]
opts = OmegaConf.create(
    {"accelerator": "cpu", "num_workers": 0, "resize": None, "block": None, "inference": {}}
)


def validate(net, meta, label: str, started: float) -> None:
    figures = {k: round(float(v), 3) for k, v in test_checkpoint(net, meta, val, opts)[0].items()}
    print(label, figures, f"{time.time() - started:.0f}s", flush=True)


def recompute_batchnorm(net, meta) -> None:
    """Reset every BatchNorm's statistics and take them as a plain mean over the training frames."""
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain mean of every batch
    net.eval()
    for m in norms:
        m.train()
    with torch.no_grad():
        for batch in loader_for(train[::2], preprocess_of(meta, opts), 0):
            attention = with_attention(batch)["attention"] if net.uses_attention_map else None
            image_scores(net, batch["image"], attention)
    net.eval()


for ckpt in sys.argv[2:]:
    net, meta = load_net(ckpt)
    started = time.time()
    validate(net, meta, f"{ckpt} as saved:", started)
    recompute_batchnorm(net, meta)
    validate(net, meta, f"{ckpt} BN recomputed:", started)
