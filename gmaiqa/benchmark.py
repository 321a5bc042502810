"""gmaiqa benchmark data.root=DIR methods=[TENG,LMG,ckpt:PATH] out=DIR [split=all|test]
(``methods=all_classical``: every classical measure of the registry; ``rank:TENG+GLVN``: a rank fusion;
``default``: whatever ``predict`` scores with given neither ``ckpt=`` nor ``method=``, its row named
``default (WHAT)``)

Scores every image of every group with each method and reports t0, t1, acc, SROCC (z-error with
``z_um``) with the same metric code as evaluation, plus the time per image. Classical measures see
the images as stored (float RGB -> luma); a checkpoint sees them with its own training preprocessing
and sliding window. Writes ``out/benchmark.csv`` and prints a table ranked by acc, then SROCC.

A checkpoint is scored its own way and in its own score direction (``gmaiqa.scoring``: a defocus
regressor's lower = clearer is turned around there).

``ms_per_image``: for a classical measure, the measure alone on decoded images; for a checkpoint,
reading, resizing, the attention map (part of the method's cost, as in the paper's Table 3) and the
sliding-window forward passes together.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from gmaiqa import default_scorer
from gmaiqa.checkpoints import load_net
from gmaiqa.data.splits import check_split
from gmaiqa.data.stack import FocusStack
from gmaiqa.errors import ConfigError
from gmaiqa.focus import get_measure
from gmaiqa.methods import check_methods, expand_methods
from gmaiqa.outputs import OUTPUTS, check_out, written
from gmaiqa.reporting import command_run
from gmaiqa.scoring import (
    GroupMetrics,
    clarity,
    device_for,
    labelled_stacks,
    reading_options,
    score_groups,
    split_seed_of,
)
from gmaiqa.wandb_settings import wandb_settings

COLUMNS = ("method", "acc", "t0", "t1", "groups", "srocc", "z_error_um", "ms_per_image")


def _result(method: str, metrics: GroupMetrics, seconds: float, images: int) -> dict:
    r = metrics.compute()
    return {
        "method": method,
        "acc": r["acc"],
        "t0": r["t0"],
        "t1": r["t1"],
        "groups": r["groups"],
        "srocc": r.get("srocc", float("nan")),
        "z_error_um": r.get("z_error_um", float("nan")),
        "ms_per_image": 1000 * seconds / max(images, 1),
    }


def pick_offsets(metrics: GroupMetrics) -> list[int]:
    """Per scored group, in the order scored: |picked - annotated clearest| in images (0 an exact pick,
    at most 1 counted by acc), what a paired comparison of two methods on the same groups needs."""
    return [int(row["offset"]) for row in metrics.rows]


def run_classical(
    stacks: list[FocusStack],
    names: list[str],
    device: torch.device,
    curves: dict[str, dict[int, np.ndarray]] | None = None,
    curve_of: frozenset[int] = frozenset(),
    offsets: dict[str, list[int]] | None = None,
) -> list[dict]:
    """Every measure on every group; ``curves`` (method -> group index -> clarity per image) receives
    the score curves of the groups in ``curve_of``, ``offsets`` (method -> one entry per group, in
    ``stacks``' order) how far each pick lands from the annotated clearest image."""
    measures = [get_measure(n) for n in names]
    state = {m.name: (GroupMetrics(), [0.0]) for m in measures}
    images = 0
    for index, stack in enumerate(tqdm(stacks, unit="group", desc="classical measures")):
        batch = (
            torch.from_numpy(np.stack([stack.read(i) for i in range(len(stack))]))
            .permute(0, 3, 1, 2)
            .to(device)
        )
        images += len(stack)
        for m in measures:
            metrics, seconds = state[m.name]
            start = time.perf_counter()
            clarity = m.clarity(batch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[0] += time.perf_counter() - start
            metrics.update(stack, clarity.cpu())
            if curves is not None and index in curve_of:
                curves.setdefault(m.name, {})[index] = clarity.cpu().numpy()
    if offsets is not None:
        offsets.update({m.name: pick_offsets(state[m.name][0]) for m in measures})
    return [_result(m.name, state[m.name][0], state[m.name][1][0], images) for m in measures]


def run_checkpoint(
    stacks: list[FocusStack],
    path: str,
    device: torch.device,
    cfg: DictConfig,
    curves: dict[str, dict[int, np.ndarray]] | None = None,
    curve_of: frozenset[int] = frozenset(),
    offsets: dict[str, list[int]] | None = None,
) -> dict:
    """One checkpoint on every group, scored as ``predict`` scores it; ``curves`` and ``offsets`` as
    for :func:`run_classical`, under the method name ``ckpt:PATH``."""
    net, meta = load_net(path)
    net.to(device)
    metrics, images = GroupMetrics(), 0
    start = time.perf_counter()
    for index, raw in score_groups(net, meta, stacks, cfg, device, desc=f"ckpt {Path(path).name}"):
        images += len(raw)
        clear = clarity(raw, meta)
        metrics.update(stacks[index], clear)
        if curves is not None and index in curve_of:
            curves.setdefault(f"ckpt:{path}", {})[index] = clear.numpy()
    seconds = time.perf_counter() - start
    if offsets is not None:
        offsets[f"ckpt:{path}"] = pick_offsets(metrics)
    return _result(f"ckpt:{path}", metrics, seconds, images)


def run_default(
    stacks: list[FocusStack],
    device: torch.device,
    cfg: DictConfig,
    curves: dict[str, dict[int, np.ndarray]],
    curve_of: frozenset[int] = frozenset(),
) -> dict:
    """``methods=[default]``: the default scorer scored as what it is (a measure, a fusion or the shipped
    model), its row and curves named ``default (WHAT)`` so it stands apart from the same method listed
    by name."""
    chosen = default_scorer.method()
    own: dict[str, dict[int, np.ndarray]] = {}
    if chosen.startswith("ckpt:"):
        row = run_checkpoint(stacks, chosen[len("ckpt:") :], device, cfg, own, curve_of)
    else:
        (row,) = run_classical(stacks, [chosen], device, own, curve_of)
    label = f"{default_scorer.NAME} ({chosen})"
    if own:  # the groups of curve_of, under the one method it ran
        curves[label] = next(iter(own.values()))
    return {**row, "method": label}


def curve_groups(stacks: list[FocusStack], curves) -> list[int]:
    """``curves``: how many groups get a score-curve figure (the first N), or a list of group names."""
    if curves is None or curves == 0:
        return []
    if isinstance(curves, int):
        return list(range(min(curves, len(stacks))))
    names = [str(c) for c in curves]
    index = {s.group: i for i, s in enumerate(stacks)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ConfigError(
            "curves", f"groups {missing} are not in the scored set", f"pick from {list(index)[:10]}..."
        )
    return [index[n] for n in names]


def write_curves(
    folder: Path, stacks: list[FocusStack], groups: list[int], curves: dict, rows: list[dict], chosen
) -> list[Path]:
    """One PNG per group: each method's clarity normalised to [0, 1] over capture order, the annotated
    clearest marked (the paper's Fig. 7 style). Several peaks show a measure torn between clear and
    blurred regions. Methods: ``chosen`` or the five best by acc plus every checkpoint."""
    # here, not at import: loads matplotlib only when this runs
    import matplotlib

    matplotlib.use("Agg")
    # here, not at import: loads matplotlib only when this runs
    import matplotlib.pyplot as plt

    if not groups:
        return []
    ranked = [r["method"] for r in rows]
    methods = [
        m
        for m in (list(chosen) if chosen else ranked[:5] + [m for m in ranked[5:] if m.startswith("ckpt:")])
        if m in curves
    ]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index in groups:
        stack = stacks[index]
        fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
        order = np.arange(1, len(stack) + 1)
        if stack.scores is not None:
            ax.plot(order, stack.scores / max(stack.scores.max(), 1e-9), "k:", lw=1, label="annotated score")
        for method in methods:
            values = curves[method][index].astype(float)
            span = values.max() - values.min()
            label = method
            if method.startswith("ckpt:") and Path(method[5:]).parent.parent.name:  # a run's stage folder
                label = "ckpt:" + Path(method[5:]).parent.parent.name
            ax.plot(
                order,
                (values - values.min()) / span if span > 0 else values * 0,
                "o-",
                ms=3,
                lw=1,
                label=label,
            )
        ax.axvline(stack.clearest + 1, color="k", ls="--", lw=1, label="annotated clearest")
        ax.set_xlabel("capture order")
        ax.set_ylabel("normalised score")
        ax.set_title(stack.group, fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = folder / f"{stack.group}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def log_to_wandb(cfg: DictConfig, out: Path, rows: list[dict], figures: list[Path], settings: dict) -> None:
    """The ranked table as a W&B run (offline files under ``out/wandb`` unless logger.wandb.mode=online);
    ``settings``: the command's ``logger.wandb`` (``gmaiqa.wandb_settings.wandb_settings``)."""
    run = command_run(
        settings,
        out,
        "benchmark",
        f"benchmark/{Path(str(cfg.data.root)).name}",
        {"data": str(cfg.data.root), "split": cfg.split, "methods": [r["method"] for r in rows]},
    )
    if run is None:
        return
    # here, not at import: loads wandb only when this runs
    import wandb

    table = wandb.Table(columns=list(COLUMNS), data=[[r[c] for c in COLUMNS] for r in rows])
    payload = {"benchmark/ranking": table}
    if figures:
        payload["benchmark/score_curves"] = [wandb.Image(str(p), caption=p.stem) for p in figures]
    run.log(payload)
    run.summary.update({f"{r['method']}/acc": r["acc"] for r in rows})
    run.finish()


def benchmark(cfg: DictConfig) -> list[dict]:

    out = check_out(cfg.out, cfg.overwrite, OUTPUTS["benchmark"])
    wandb = wandb_settings(cfg, "benchmark")
    check_split(cfg.split)
    methods = check_methods(expand_methods(cfg.methods))
    stacks = labelled_stacks(
        cfg.data.root,
        cfg.data.validate,
        cfg.split,
        cfg.data.split_ratios,
        split_seed_of(cfg.data, 0),
        **reading_options(cfg.data),
    )
    device = device_for(cfg.accelerator)
    classical = [m for m in methods if not str(m).startswith("ckpt:") and m != default_scorer.NAME]
    groups = curve_groups(stacks, cfg.curves)
    curves: dict[str, dict[int, np.ndarray]] = {}
    rows = run_classical(stacks, classical, device, curves, frozenset(groups)) if classical else []
    rows += [
        run_checkpoint(stacks, str(m)[len("ckpt:") :], device, cfg, curves, frozenset(groups))
        for m in methods
        if str(m).startswith("ckpt:")
    ]
    if default_scorer.NAME in methods:
        rows.append(run_default(stacks, device, cfg, curves, frozenset(groups)))
    rank(rows)
    out.mkdir(parents=True, exist_ok=True)
    # the figures first, the table last: a benchmark.csv that exists is a benchmark that finished
    with written(out / "curves") as part:
        figures = write_curves(part, stacks, groups, curves, rows, cfg.curve_methods)
    figures = [out / "curves" / figure.relative_to(part) for figure in figures]
    write_ranking(out / "benchmark.csv", rows)
    log_to_wandb(cfg, out, rows, figures, wandb)
    print_ranking(f"{cfg.data.root} ({cfg.split}, {rows[0]['groups']} groups)", rows)
    print(f"-> {out / 'benchmark.csv'}")
    return rows


def rank(rows: list[dict]) -> None:
    """Best first: by acc, then SROCC (a method without SROCC last among equals)."""
    rows.sort(key=lambda r: (-r["acc"], -(r["srocc"] if r["srocc"] == r["srocc"] else -2)))


def write_ranking(path: Path, rows: list[dict]) -> None:
    with written(path) as part, open(part, "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        for r in rows:
            # no scores (clearest flag only) or no z_um: the column stays empty rather than "nan"
            writer.writerow(
                {
                    k: (
                        ""
                        if isinstance(v, float) and math.isnan(v)
                        else f"{v:.4f}"
                        if isinstance(v, float)
                        else v
                    )
                    for k, v in r.items()
                }
            )


def print_ranking(title: str, rows: list[dict]) -> None:
    def shown(row: dict, column: str) -> str:
        value = row[column]
        if column == "method" and str(value).startswith("ckpt:"):
            return "ckpt:" + "/".join(Path(value[len("ckpt:") :]).parts[-3:])  # stage/checkpoints/file
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    width = max(len(shown(r, "method")) for r in rows)
    print(f"\n{title}")
    print(f"{'method':<{width}}  " + "  ".join(f"{c:>12}" for c in COLUMNS[1:]))
    for r in rows:
        print(f"{shown(r, 'method'):<{width}}  " + "  ".join(f"{shown(r, c):>12}" for c in COLUMNS[1:]))


def compare_on(stacks: list[FocusStack], checkpoint: str, measures: list[str], device) -> list[dict]:
    """A checkpoint beside classical focus measures on the same groups, ranked (what ``train`` prints
    after its test when ``compare_with`` names measures): the benchmark's rows, scored the benchmark's way."""
    cfg = OmegaConf.create({"resize": None, "block": None, "inference": {}, "num_workers": 0})  # as trained
    rows = run_classical(stacks, check_methods(expand_methods(measures)), device)
    rows.append(run_checkpoint(stacks, checkpoint, device, cfg))
    rank(rows)
    return rows
