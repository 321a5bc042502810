"""The shipped model and classical measures voting together (issue 32, what it would take to win): does
a rank vote of ``ckpt:default`` with a classical scorer keep the model's feces picks and take the
classical measures' leucorrhea and fluorescence ones?

    uv run python benchmarks/model_vote.py --dev DEV_SET [--work DIR] [--out JSON]

The first target asks the default scorer to match the best single classical measure (under the rule of
``gmaiqa.default_scorer``) on every set; the shipped model leads it on feces and trails it on leucorrhea
and fluorescence (benchmarks/results/default_scorer_trials.json). A vote is the cheapest way to ask
whether the two kinds of evidence combine. The candidates, fixed before measuring (so that the held-out
groups pick nothing):

* ``vote:default+BEST``: the model and the best single classical measure of the committed trials table
  (VOLA when this was written), each half the vote;
* ``vote:default+FUSION``: the model and the classical rank fusion ``rank:TENG+LAPM+GLVN+WAVS``, each half.

Each is ``gmaiqa.focus.fusion``'s rank fusion (mean within-stack rank, ties broken by the scaled values)
over two columns, the model's clarity and the classical one, so nothing is fitted. The members are
measured in the same run (their rows are in the output too, and must reproduce the trials table's picks:
the sets are rendered from the same seeds); a vote's ms per image is its members' sum. Writes rows in
``default_scorer.py``'s format, so ``default_scorer.py --markdown OUT [--full | --compare A B]`` reads
them. The model's per-image scores are cached under ``--work`` (the model pass is most of the time).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from default_scorer import (  # noqa: E402
    FUSION,
    MODEL,
    PRESET_ORDER,
    ROOT,
    markdown,
    set_groups,
    synthetic_sets,
)

from gmaiqa import default_scorer  # noqa: E402
from gmaiqa.benchmark import _result, pick_offsets, run_checkpoint, run_classical  # noqa: E402
from gmaiqa.focus.fusion import PREFIX, RankFusion  # noqa: E402
from gmaiqa.runs import git_commit  # noqa: E402
from gmaiqa.scoring import GroupMetrics, labelled_stacks  # noqa: E402

TRIALS = ROOT / "benchmarks" / "results" / "default_scorer_trials.json"
VOTE = "vote:"


def best_single(table: Path) -> str:
    """The best single classical measure of a default_scorer.py table under the rule (what the first
    target is set against)."""
    rows = json.loads(table.read_text())["rows"]
    compound = (PREFIX, "ckpt:", default_scorer.TRIAL)
    ranked = default_scorer.ranked(default_scorer.summarise(rows))
    return next(c for c in ranked if not c.startswith(compound))


def vote(columns: list[torch.Tensor]) -> torch.Tensor:
    """Per-image clarities of one stack from several scorers -> the rank vote (``RankFusion.of_stack``)."""
    return RankFusion(members=()).of_stack(torch.stack([c.double() for c in columns], dim=1))


def measure_members(root: Path, classical: list[str], cache: Path) -> dict:
    """Per-image clarity of every member on every group of one set (cached), with each member's row."""
    if cache.is_file():
        return json.loads(cache.read_text())
    stacks = labelled_stacks(root, "headers", "all", (0.6, 0.2, 0.2), 0)
    every = frozenset(range(len(stacks)))
    curves: dict[str, dict[int, object]] = {}
    offsets: dict[str, list[int]] = {}
    rows = run_classical(stacks, classical, torch.device("cpu"), curves, every, offsets)
    options = OmegaConf.create(
        {"resize": None, "block": None, "inference": {}, "num_workers": 0, "pixel_um": None}
    )
    row = run_checkpoint(stacks, default_scorer.NAME, torch.device("cpu"), options, curves, every, offsets)
    rows.append({**row, "method": MODEL})
    curves[MODEL] = curves.pop(row["method"])
    offsets[MODEL] = offsets.pop(row["method"])
    measured = {
        "rows": [{**r, "offsets": offsets[r["method"]]} for r in rows],
        "scores": {m: [curves[m][i].tolist() for i in range(len(stacks))] for m in curves},
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(measured))
    return measured


def set_rows(name: str, root: Path, votes: dict[str, tuple[str, str]], measured: dict) -> list[dict]:
    """The members' rows and each vote's row for one set."""
    stacks = labelled_stacks(root, "headers", "all", (0.6, 0.2, 0.2), 0)
    rows = [{**r, "set": name, "candidate": r.pop("method")} for r in map(dict, measured["rows"])]
    ms = {r["candidate"]: r["ms_per_image"] for r in rows}
    images = sum(len(s) for s in stacks)
    for label, members in votes.items():
        metrics = GroupMetrics()
        for i, stack in enumerate(stacks):
            metrics.update(stack, vote([torch.tensor(measured["scores"][m][i]) for m in members]))
        row = _result(label, metrics, sum(ms[m] for m in members) * images / 1000, images)
        rows.append({**row, "set": name, "candidate": row.pop("method"), "offsets": pick_offsets(metrics)})
    keep = ("set", "candidate", "acc", "t0", "groups", "srocc", "z_error_um", "ms_per_image", "offsets")
    return [{k: r[k] for k in keep} for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dev", type=Path, required=True, help="the real dev set (real_dev_set.py)")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "default-scorer")
    parser.add_argument("--groups", type=int, default=24, help="held-out groups per preset")
    parser.add_argument("--trials", type=Path, default=TRIALS, help="the table that names the best measure")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_vote.json")
    args = parser.parse_args()
    started = time.perf_counter()
    best = best_single(args.trials)
    votes = {f"{VOTE}default+{best}": (MODEL, best), f"{VOTE}default+{FUSION}": (MODEL, FUSION)}
    sets = {**synthetic_sets(args.work, args.groups), "dev": args.dev}
    rows = []
    for name, root in sets.items():
        measured = measure_members(root, [best, FUSION], args.work / "model_vote" / f"{name}.json")
        rows += set_rows(name, root, votes, measured)
        print(f"{name}: measured ({time.perf_counter() - started:.0f} s so far)", flush=True)
    print(markdown(rows))
    record = {
        "rows": rows,
        "group_order": {name: set_groups(root) for name, root in sets.items()},
        "votes": {label: list(members) for label, members in votes.items()},
        "measured": {
            "script": "benchmarks/model_vote.py",
            "command": " ".join(["benchmarks/model_vote.py", *sys.argv[1:]]),
            "commit": git_commit() or "unknown",
            "date": datetime.date.today().isoformat(),
            "presets": list(PRESET_ORDER),
            "seconds": round(time.perf_counter() - started),
        },
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
