"""The shipped model and classical measures together (issue 32, what it would take to win): does a
combination of ``ckpt:default`` with a classical scorer keep the model's feces picks and take the
classical measures' leucorrhea and fluorescence ones?

    uv run python benchmarks/model_vote.py --dev DEV_SET [--work DIR] [--out JSON]
    uv run python benchmarks/model_vote.py --work DIR2 --groups 48 --first-seed 3000 --out JSON2

The first target asks the default scorer to match the best single classical measure (under the rule of
``gmaiqa.default_scorer``) on every set; the shipped model leads it on feces and trails it on leucorrhea
and fluorescence (benchmarks/results/default_scorer_trials.json). Combining the two kinds of evidence is
the cheapest way to ask whether they add up. Two ways, each with two partners, all fixed before measuring
(so that the held-out groups pick nothing; the partners are the best single classical measure of the
committed trials table, VOLA when this was written, and the classical rank fusion
``rank:TENG+LAPM+GLVN+WAVS``):

* ``vote:default+PARTNER``: ``gmaiqa.focus.fusion``'s rank fusion (mean within-stack rank, ties broken
  by the scaled values) over two columns, the model's clarity and the partner's: each half the vote.
* ``shortlist:default+PARTNER``: the model shortlists its clear images, every image within 5 points of
  its top score, and the partner orders the shortlist (the rest keep the model's order). The 5 points
  are the paper's, not fitted: §4.1 scores the clearest image 100 and the other clear ones 95-99, and
  L_diff (Eq. 11) trains the model's score differences on that scale. A vote lets the measure overturn
  any pick of the model; the shortlist only a pick between images the model itself calls clear.
* ``tilt:default+PARTNER`` (``--tilt``): per image, the model's clarity plus ``w`` times the natural
  logarithm of the partner's value. Unlike the other two it needs no other image of the stack, so a
  search (``gmaiqa autofocus``), which scores one frame at a time, could use it as it is: the logarithm
  makes it blind to the partner's scale (a brighter or higher-gain camera multiplies a gradient or
  autocorrelation measure by a constant, which shifts every frame's log alike), as autofocus's
  frame-by-frame rank fusion is. ``w`` is fitted, so not on a measured set: on the validation split of
  the shipped model's own recipe (``experiment=default_model``'s mixture, 8 groups of each preset from
  seeds 1000-1005, the groups its epochs were selected on), over the fixed grid ``TILT_WEIGHTS``, by the
  rule of ``gmaiqa.default_scorer`` (acc, then exact picks), ties to the smaller weight. The model was
  selected on those groups, so they flatter it. Two partners: the best single measure (VOLA), and the
  best single measure that is above 0 on every image of the fit set (:func:`positive_partner`; the
  logarithm of a measure that crosses 0 floors those images whatever ``w``).

The members are measured in the same run (their rows are in the output too, and must reproduce the
trials table's picks: the sets are rendered from the same seeds); a combination's ms per image is its
members' sum. ``--first-seed 3000`` renders a second, independent draw of the presets (seeds 3000-3005,
never used by a recipe or a choice; ``--dev`` left out), which confirms or not what the first draw
shows: the first draw has chosen the shipped model among trials, the second has chosen nothing.
Writes rows in ``default_scorer.py``'s format, so ``default_scorer.py --markdown OUT [--full |
--compare A B]`` reads them. The model's per-image scores are cached under ``--work`` (the model pass is
most of the time).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from default_scorer import (  # noqa: E402
    FIRST_DRAW_GROUPS,
    FIRST_SEED,
    FUSION,
    MODEL,
    PRESET_ORDER,
    ROOT,
    best_single,
    heldout_record,
    markdown,
    provenance,
    ranked_singles,
    scoring_options,
    set_groups,
    set_stacks,
    synthetic_sets,
)

from gmaiqa import default_scorer  # noqa: E402
from gmaiqa.benchmark import _result, pick_offsets, run_checkpoint, run_classical  # noqa: E402
from gmaiqa.config_compose import compose_command  # noqa: E402
from gmaiqa.data.dataset_root import dataset_root  # noqa: E402
from gmaiqa.data.stack import CLEAR_FLOOR, SCORE_SCALE  # noqa: E402
from gmaiqa.focus.fusion import RankFusion  # noqa: E402
from gmaiqa.runs import git_commit  # noqa: E402
from gmaiqa.scoring import GroupMetrics, labelled_stacks  # noqa: E402

TRIALS = ROOT / "benchmarks" / "results" / "default_scorer_trials.json"
VOTE = "vote:"
SHORTLIST = "shortlist:"
TILT = "tilt:"
# the weights a tilt may take, fixed before fitting: 0 (the model alone), then doublings up to 128, at
# which LMG's median step between neighbouring planes of the fit set (0.022 in ln) is worth 2.8 points
# against the model's own median step of 4.1
TILT_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
TILT_FLOOR = 1e-30  # a partner value at or below 0 (VOLA of a flat, noisy plane) counts as the least clear
RECIPE = "experiment=default_model"  # the shipped model's recipe, whose validation split fits a tilt
# GMANet §4.1: the clearest image scores 100 and the other clear images 95-99 (the labels the synthetic
# data carry), and L_diff (Eq. 11) trains the model's score differences on that scale, so two images
# less than 5 points apart are both clear by the model's own measure
CLEAR_BAND = SCORE_SCALE - CLEAR_FLOOR


def vote(columns: list[torch.Tensor]) -> torch.Tensor:
    """Per-image clarities of one stack from several scorers -> the rank vote (``RankFusion.of_stack``)."""
    return RankFusion(members=()).of_stack(torch.stack([c.double() for c in columns], dim=1))


def clear_images(model: torch.Tensor, band: float = CLEAR_BAND) -> torch.Tensor:
    """The images of one stack the model calls clear: within ``band`` points of its top score."""
    return model >= model.max() - band


def shortlist(columns: list[torch.Tensor], band: float = CLEAR_BAND) -> torch.Tensor:
    """(the model's clarities, a measure's) of one stack -> the model's clear images, those within
    ``band`` points of its top score, ordered by the measure and placed above every other image, which
    keep the model's order. The measure only ever chooses among images the model calls clear."""
    model, measure = columns[0].double(), columns[1].double()
    top = model.max()
    clear = clear_images(model, band)
    within = torch.empty(int(clear.sum()), dtype=torch.float64)
    within[measure[clear].argsort(stable=True)] = torch.arange(len(within), dtype=torch.float64)
    fused = model.clone()
    fused[clear] = top + 1 + within  # above every image outside the band, which all score < top - band
    return fused


def tilt(columns: list[torch.Tensor], weight: float) -> torch.Tensor:
    """(the model's clarities, a measure's) of one stack -> clarity + ``weight`` ln(measure), image by
    image: no other image of the stack is used."""
    model, measure = columns[0].double(), columns[1].double()
    return model + weight * measure.clamp_min(TILT_FLOOR).log()


COMBINE = {VOTE: vote, SHORTLIST: shortlist}


def _members_measured(rows: list[dict], curves: dict, offsets: dict, groups: int) -> dict:
    """``run_classical`` / ``run_checkpoint``'s rows, curves and offsets as a cache's rows and scores."""
    return {
        "rows": [{**r, "offsets": offsets[r["method"]]} for r in rows],
        "scores": {m: [curves[m][i].tolist() for i in range(groups)] for m in curves},
    }


def measure_members(stacks: list, classical: list[str], cache: Path) -> dict:
    """Per-image clarity of every member on every group of one set (cached), with each member's row; a
    cache that lacks a measure of ``classical`` gains it (the model pass, most of the time, is kept)."""
    every = frozenset(range(len(stacks)))
    curves: dict[str, dict[int, object]] = {}
    offsets: dict[str, list[int]] = {}
    cached = json.loads(cache.read_text()) if cache.is_file() else None
    if cached is not None:
        missing = [c for c in classical if c not in cached["scores"]]
        if not missing:
            return cached
        added = _members_measured(
            run_classical(stacks, missing, torch.device("cpu"), curves, every, offsets),
            curves,
            offsets,
            len(stacks),
        )
        cached["rows"] += added["rows"]
        cached["scores"].update(added["scores"])
        cache.write_text(json.dumps(cached))
        return cached
    rows = run_classical(stacks, classical, torch.device("cpu"), curves, every, offsets)
    row = run_checkpoint(
        stacks, default_scorer.NAME, torch.device("cpu"), scoring_options(), curves, every, offsets
    )
    rows.append({**row, "method": MODEL})
    curves[MODEL] = curves.pop(row["method"])
    offsets[MODEL] = offsets.pop(row["method"])
    measured = _members_measured(rows, curves, offsets, len(stacks))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(measured))
    return measured


def positive_partner(ranked: list[str], validation: list, cache: Path) -> str:
    """The first measure of ``ranked`` whose value is above 0 on every image of the fit set: a tilt
    takes the measure's logarithm, which for a measure that crosses 0 (VOLA, a difference of two
    autocorrelations, is at or below 0 on a third of the fit set's images) is no small nudge but a
    veto, every such image floored far below the rest whatever the weight."""
    for name in ranked:
        values = measure_members(validation, [name], cache)["scores"][name]
        if min(min(group) for group in values) > 0:
            return name
    raise SystemExit("no measure of the table is above 0 on every image of the fit set")


def combiner(label: str, weights: dict[str, float] | None = None):
    """``vote:...``, ``shortlist:...`` or ``tilt:...`` (with its fitted weight from ``weights``) -> the
    function that combines its members' columns."""
    if label.startswith(TILT):
        return functools.partial(tilt, weight=(weights or {})[label])
    return next(f for prefix, f in COMBINE.items() if label.startswith(prefix))


def recipe_validation() -> list:
    """The validation groups of the shipped model's recipe (rendered into the cache on first use, as
    training renders them)."""
    cfg = compose_command("train", [RECIPE])
    root = dataset_root(None, cfg.data.synthetic, cfg.paths.cache_dir)
    return labelled_stacks(root, "headers", "val", tuple(cfg.data.split_ratios), int(cfg.data.split_seed))


def tilt_grid(stacks: list, measured: dict, partner: str) -> list[dict]:
    """Every weight of ``TILT_WEIGHTS``: ``tilt:default+partner``'s acc, exact picks and SROCC on
    ``stacks``, from the members' cached per-image scores ``measured``."""
    grid = []
    for weight in TILT_WEIGHTS:
        metrics = GroupMetrics()
        for i, stack in enumerate(stacks):
            columns = [torch.tensor(measured["scores"][m][i]) for m in (MODEL, partner)]
            metrics.update(stack, tilt(columns, weight))
        r = metrics.compute()
        grid.append({"weight": weight, **{k: r[k] for k in ("acc", "t0", "groups")}, "srocc": r.get("srocc")})
    return grid


def fit_tilt(stacks: list, measured: dict, partner: str) -> tuple[float, list[dict]]:
    """The weight of ``tilt:default+partner`` under the rule (acc, then exact picks; ties to the smaller
    weight) on ``stacks``, and every weight's result there."""
    grid = tilt_grid(stacks, measured, partner)
    best = max(grid, key=lambda g: (g["acc"], g["t0"], -g["weight"]))
    return best["weight"], grid


def set_rows(
    name: str,
    stacks: list,
    combined: dict[str, tuple[str, str]],
    measured: dict,
    weights: dict[str, float] | None = None,
) -> list[dict]:
    """The members' rows and each combination's row for one set."""
    rows = [{**r, "set": name, "candidate": r.pop("method")} for r in map(dict, measured["rows"])]
    ms = {r["candidate"]: r["ms_per_image"] for r in rows}
    images = sum(len(s) for s in stacks)
    for label, members in combined.items():
        metrics = GroupMetrics()
        combine = combiner(label, weights)
        for i, stack in enumerate(stacks):
            metrics.update(stack, combine([torch.tensor(measured["scores"][m][i]) for m in members]))
        row = _result(label, metrics, sum(ms[m] for m in members) * images / 1000, images)
        rows.append({**row, "set": name, "candidate": row.pop("method"), "offsets": pick_offsets(metrics)})
    keep = ("set", "candidate", "acc", "t0", "groups", "srocc", "z_error_um", "ms_per_image", "offsets")
    return [{k: r[k] for k in keep} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dev", type=Path, help="the real dev set (real_dev_set.py); left out: presets only")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "default-scorer")
    parser.add_argument("--groups", type=int, default=FIRST_DRAW_GROUPS, help="held-out groups per preset")
    parser.add_argument(
        "--first-seed", type=int, default=FIRST_SEED, help="preset i is rendered from this seed + i"
    )
    parser.add_argument("--trials", type=Path, default=TRIALS, help="the table that names the best measure")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_vote.json")
    parser.add_argument(
        "--tilt",
        action="store_true",
        help=f"also tilt:default+PARTNER, its weight fitted on {RECIPE}'s validation split",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    commit = git_commit() or "unknown"  # the code that measures, whatever lands while it runs
    trials = json.loads(args.trials.read_text())["rows"]
    best = best_single(trials)
    combined = {
        f"{kind}default+{measure}": (MODEL, measure) for kind in COMBINE for measure in (best, FUSION)
    }
    weights, fits, partners = {}, {}, [best]
    if args.tilt:
        validation = recipe_validation()
        fit_cache = args.work / "model_vote" / "recipe_val.json"
        positive = positive_partner(ranked_singles(trials), validation, fit_cache)
        partners = list(dict.fromkeys([best, positive]))
        fitted = measure_members(validation, partners, fit_cache)
        for partner in partners:
            label = f"{TILT}default+{partner}"
            weights[label], grid = fit_tilt(validation, fitted, partner)
            combined[label] = (MODEL, partner)
            fits[label] = {
                "fitted_on": f"{RECIPE}, split val ({len(validation)} groups)",
                "weight": weights[label],
                "grid": grid,
                "partner_at_or_below_0": sum(v <= 0 for group in fitted["scores"][partner] for v in group),
                "images": sum(len(group) for group in fitted["scores"][partner]),
            }
            print(f"{label}: weight {weights[label]}, fitted on {RECIPE}'s validation split:")
            for g in grid:
                print(f"  w {g['weight']:>6}: acc {g['acc']:.3f}  t0 {g['t0']}/{g['groups']}")
    sets = synthetic_sets(args.work, args.groups, args.first_seed)
    if args.dev:
        sets["dev"] = args.dev
    stacks = {name: set_stacks(root) for name, root in sets.items()}
    rows = []
    members = [best, FUSION, *partners[1:]]
    for name, held in stacks.items():
        measured = measure_members(held, members, args.work / "model_vote" / f"{name}.json")
        rows += set_rows(name, held, combined, measured, weights)
        print(f"{name}: measured ({time.perf_counter() - started:.0f} s so far)", flush=True)
    print(markdown(rows))
    record = {
        "rows": rows,
        "group_order": {name: set_groups(held) for name, held in stacks.items()},
        "combined": {label: list(members) for label, members in combined.items()},
        **({"tilt_fit": fits} if fits else {}),
        "measured": provenance(
            "model_vote.py",
            commit,
            started,
            presets=list(PRESET_ORDER),
            heldout=heldout_record(args.groups, args.first_seed),
        ),
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
