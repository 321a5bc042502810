"""gmaiqa benchmark data.root=DIR methods=[TENG,LMG,ckpt:PATH] out=DIR [split=all|test]

Scores every image of every group with each method and reports t0, t1, acc, SROCC (z-error with
``z_um``) with the same metric code as evaluation, plus the time per image. Classical measures see
the images as stored (float RGB -> luma); a checkpoint sees them with its own training preprocessing
and sliding window. Writes ``out/benchmark.csv`` and prints a table ranked by acc, then SROCC.

``ms_per_image``: for a classical measure, the measure alone on decoded images; for a checkpoint,
reading, resizing, the attention map (part of the method's cost, as in the paper's Table 3) and the
sliding-window forward passes together.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from gmaiqa.data.io import read_image
from gmaiqa.data.stack import FocusStack
from gmaiqa.errors import ConfigError
from gmaiqa.focus import get_measure
from gmaiqa.metrics import ClearestSelection, GroupSROCC

COLUMNS = ("method", "acc", "t0", "t1", "groups", "srocc", "z_error_um", "ms_per_image")


def _update(selection: ClearestSelection, srocc: GroupSROCC, stack: FocusStack, clarity: torch.Tensor) -> None:
    selection.update(clarity, stack.clearest, torch.from_numpy(stack.z_um) if stack.z_um is not None else None)
    if stack.scores is not None:
        srocc.update(clarity, torch.from_numpy(stack.scores))


def _result(method: str, selection: ClearestSelection, srocc: GroupSROCC, seconds: float, images: int) -> dict:
    r = {k: float(v) for k, v in selection.compute().items()}
    s = float(srocc.compute()) if srocc.count > 0 else float("nan")
    return {"method": method, "acc": r["acc"], "t0": int(r["t0"]), "t1": int(r["t1"]), "groups": int(r["groups"]),
            "srocc": s, "z_error_um": r.get("z_error_um", float("nan")), "ms_per_image": 1000 * seconds / max(images, 1)}


def run_classical(stacks: list[FocusStack], names: list[str], device: torch.device) -> list[dict]:
    measures = [get_measure(n) for n in names]
    state = {m.name: (ClearestSelection(), GroupSROCC(), [0.0]) for m in measures}
    images = 0
    for stack in tqdm(stacks, unit="group", desc="classical measures"):
        batch = torch.from_numpy(np.stack([read_image(p) for p in stack.paths])).permute(0, 3, 1, 2).to(device)
        images += len(stack)
        for m in measures:
            selection, srocc, seconds = state[m.name]
            start = time.perf_counter()
            clarity = m.clarity(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[0] += time.perf_counter() - start
            _update(selection, srocc, stack, clarity.cpu())
    return [_result(m.name, *state[m.name][:2], state[m.name][2][0], images) for m in measures]


def run_checkpoint(stacks: list[FocusStack], path: str, device: torch.device, cfg: DictConfig) -> dict:
    from gmaiqa.checkpoints import load_net
    from gmaiqa.evaluate import score_groups

    net, meta = load_net(path)
    net.to(device)
    selection, srocc, seconds, images = ClearestSelection(), GroupSROCC(), 0.0, 0
    start = time.perf_counter()
    for index, scores in score_groups(net, meta, stacks, cfg, device, desc=f"ckpt {Path(path).name}"):
        images += len(scores)
        _update(selection, srocc, stacks[index], scores)
    seconds = time.perf_counter() - start
    return _result(f"ckpt:{path}", selection, srocc, seconds, images)


def benchmark(cfg: DictConfig) -> list[dict]:
    from gmaiqa.evaluate import device_for, labelled_stacks, prepare_out

    out = prepare_out(cfg.out, cfg.overwrite, ("benchmark.csv",))
    methods = list(OmegaConf.to_container(cfg.methods, resolve=True))
    if not methods:
        raise ConfigError("methods", "no method given", "e.g. methods=[TENG,LMG,ckpt:outputs/.../best.ckpt]")
    stacks = labelled_stacks(cfg.data.root, cfg.data.validate, cfg.split, cfg.data.split_ratios, cfg.data.seed)
    device = device_for(cfg.accelerator)
    classical = [m for m in methods if not str(m).startswith("ckpt:")]
    rows = run_classical(stacks, classical, device) if classical else []
    rows += [run_checkpoint(stacks, str(m)[len("ckpt:"):], device, cfg) for m in methods if str(m).startswith("ckpt:")]
    rows.sort(key=lambda r: (-r["acc"], -(r["srocc"] if r["srocc"] == r["srocc"] else -2)))
    with open(out / "benchmark.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    def shown(row: dict, column: str) -> str:
        value = row[column]
        if column == "method" and str(value).startswith("ckpt:"):
            return "ckpt:" + "/".join(Path(value[len("ckpt:"):]).parts[-3:])  # stage/checkpoints/file
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    width = max(len(shown(r, "method")) for r in rows)
    print(f"\n{cfg.data.root} ({cfg.split}, {rows[0]['groups']} groups)")
    print(f"{'method':<{width}}  " + "  ".join(f"{c:>12}" for c in COLUMNS[1:]))
    for r in rows:
        print(f"{shown(r, 'method'):<{width}}  " + "  ".join(f"{shown(r, c):>12}" for c in COLUMNS[1:]))
    print(f"-> {out / 'benchmark.csv'}")
    return rows
