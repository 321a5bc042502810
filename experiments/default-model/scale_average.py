"""Diagnostic: does averaging a model's scores over a few zooms of each frame (test-time scale
averaging) pick better than scoring at the native size? The default model was trained at a random zoom
of 0.7-1.4 per batch, so every zoom in that range is one it has seen.

    uv run python experiments/default-model/scale_average.py MIXTURE_ROOT [WEIGHTS] [--scales 0.8 1 1.25]

MIXTURE_ROOT: the recipe's cached mixture (.gmaiqa_cache/synthetic/mixture-*), whose manifest holds the
splits; WEIGHTS: a checkpoint or exported file (default: the shipped model). Scores the validation
groups once per zoom, then prints acc, t0 and mean SROCC for every zoom alone and for the averages of
every pair and of all of them, overall and per preset (CPU, 2 threads)."""

import argparse
import itertools
from collections import defaultdict

import torch
from omegaconf import OmegaConf

from gmaiqa.checkpoints import load_net
from gmaiqa.data.pixels import source_size
from gmaiqa.metrics import spearman
from gmaiqa.scoring import labelled_stacks, score_groups

parser = argparse.ArgumentParser()
parser.add_argument("root")
parser.add_argument("weights", nargs="?", default="default")
parser.add_argument("--scales", type=float, nargs="+", default=[0.8, 1.0, 1.25])
args = parser.parse_args()
torch.set_num_threads(2)
stacks = labelled_stacks(args.root, "none", "val", [0.6, 0.2, 0.2], 0)
net, meta = load_net(args.weights)
height, width = source_size(stacks[0])  # the recipe renders one frame size
scores = {}
for zoom in args.scales:
    resize = "native" if zoom == 1.0 else [round(height * zoom), round(width * zoom)]
    cfg = OmegaConf.create({"resize": resize, "num_workers": 0, "inference": {}})
    scores[zoom] = {
        i: s.float() for i, s in score_groups(net, meta, stacks, cfg, torch.device("cpu"), f"x{zoom}")
    }

combos = [(z,) for z in args.scales] + list(itertools.combinations(args.scales, 2))
if len(args.scales) > 2:
    combos.append(tuple(args.scales))
print(f"{len(stacks)} validation groups of {height}x{width}; acc / t0 / mean SROCC")
for combo in combos:
    per_preset = defaultdict(lambda: [0, 0, 0, []])
    for i, stack in enumerate(stacks):
        mean = sum(scores[z][i] for z in combo) / len(combo)
        off = abs(int(torch.argmax(mean)) - stack.clearest)
        tally = per_preset[stack.group.split("/")[0]]
        tally[0] += 1
        tally[1] += off <= 1
        tally[2] += off == 0
        tally[3].append(spearman(mean, torch.as_tensor(stack.scores, dtype=torch.float)))
    every = [v for t in per_preset.values() for v in t[3]]
    overall = (
        f"{sum(t[1] for t in per_preset.values())}/{len(stacks)} "
        f"{sum(t[2] for t in per_preset.values())} {sum(every) / len(every):.3f}"
    )
    presets = "  ".join(
        f"{name.split('-', 1)[-1]} {t[1]}/{t[0]} {t[2]} {sum(t[3]) / len(t[3]):.2f}"
        for name, t in sorted(per_preset.items())
    )
    print(f"zoom {'+'.join(f'{z:g}' for z in combo):<12} {overall}  |  {presets}")
