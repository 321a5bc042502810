"""How hard each synthetic preset is for classical focus measures (the paper's motivating problem).

Renders N groups per preset and reports top-0 / top-1 / acc / SROCC of Tenengrad and the local
maximum gradient with the same metric code as evaluation. The feces preset should defeat Tenengrad in
a real share of groups (acc <= 0.85) while blood stays easy.

    uv run python benchmarks/synthetic_difficulty.py --groups 40 --height 600 --width 800
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import report  # noqa: E402

from gmaiqa.data.io import to_float_rgb  # noqa: E402
from gmaiqa.data.synthetic import PRESETS, SynthConfig, render_group  # noqa: E402
from gmaiqa.focus import get_measure  # noqa: E402
from gmaiqa.metrics import ClearestSelection, GroupSROCC  # noqa: E402

MEASURES = ("TENG", "LMG")


def _score_group(job):
    cfg, index = job
    torch.set_num_threads(1)
    images, meta = render_group(cfg, index)
    x = torch.from_numpy(np.stack([to_float_rgb(image) for image in images])).permute(0, 3, 1, 2)
    return meta, {m: get_measure(m).clarity(x) for m in MEASURES}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--groups", type=int, default=40)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=sorted(PRESETS), choices=sorted(PRESETS))
    parser.add_argument("--out", default="benchmarks/results/synthetic_difficulty.json")
    args = parser.parse_args()
    rows = []
    for preset in args.presets:
        cfg = SynthConfig(preset=preset, height=args.height, width=args.width, seed=args.seed)
        with ProcessPoolExecutor(args.workers) as pool:
            results = list(pool.map(_score_group, [(cfg, i) for i in range(args.groups)]))
        for measure in MEASURES:
            selection, srocc = ClearestSelection(), GroupSROCC()
            for meta, values in results:
                selection.update(values[measure], meta["clearest"])
                srocc.update(values[measure], torch.tensor(meta["scores"]))
            r = selection.compute()
            rows.append(
                {
                    "preset": preset,
                    "measure": measure,
                    "groups": int(r["groups"]),
                    "t0": int(r["t0"]),
                    "t1": int(r["t1"]),
                    "acc": float(r["acc"]),
                    "srocc": float(srocc.compute()),
                }
            )
    report("synthetic_difficulty", rows, args.out)


if __name__ == "__main__":
    main()
