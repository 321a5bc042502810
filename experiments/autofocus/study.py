"""The autofocus study (issue 35, item 5): every strategy x scorer x preset on the simulated stage, and
optionally on recorded real stacks, each through `gmaiqa autofocus`; success = within one depth of
field of the truth. Prints the table, writes it as JSON and Markdown.

    uv run python experiments/autofocus/study.py [--trials 10] [--dev DEV_SET] [--out outputs/autofocus]

Simulated trials: 256x384 frames at 0.4 µm pixels, a 30 µm search range around the start, the focus
drawn within 80 % of it, tolerance 0.5 µm (half the presets' 1 µm depth of field), a budget of 80
acquisitions (a full scan takes 61). Recorded: the dev set's tiles (benchmarks/real_dev_set.py), whose
planes lie 2-20 µm apart; success there is the annotated plane itself (dof_um: 1 µm, below any step).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from gmaiqa.autofocus.search import STRATEGIES
from gmaiqa.cli import main as gmaiqa

PRESETS = ("feces", "blood", "leucorrhea", "dense", "fluorescence", "reflected")
SCORERS = {"TENG": ["method=TENG"], "GLVN": ["method=GLVN"], "default": []}
SIMULATED = ["range_um=30", "tolerance_um=0.5", "budget=80", "logger.wandb.mode=disabled"]


def run(out: Path, args: list[str]) -> dict:
    if not (out / "summary.csv").is_file():
        code = gmaiqa(["autofocus", f"out={out}", "overwrite=true", *args])
        if code != 0:
            raise SystemExit(f"gmaiqa autofocus {' '.join(args)} exited {code}")
    with open(out / "summary.csv", newline="") as handle:
        return next(csv.DictReader(handle))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--dev", type=Path, help="a real dev set (benchmarks/real_dev_set.py)")
    parser.add_argument("--out", type=Path, default=Path("outputs/autofocus"))
    parser.add_argument("--table", type=Path, default=Path(__file__).with_name("results.json"))
    parser.add_argument("--scorers", nargs="+", default=list(SCORERS), choices=list(SCORERS))
    args = parser.parse_args()
    rows = []
    sets = [
        (preset, ["stage=simulated", f"preset={preset}", f"trials={args.trials}", *SIMULATED])
        for preset in PRESETS
    ]
    if args.dev:
        sets.append(("dev (recorded)", ["stage=recorded", f"input={args.dev}", "dof_um=1", "budget=11"]))
    for name, stage in sets:
        for scorer in args.scorers:
            scoring = SCORERS[scorer]
            for strategy in STRATEGIES:
                folder = args.out / name.split()[0] / scorer / strategy
                summary = run(folder, [*stage, *scoring, f"strategy={strategy}"])
                rows.append({"set": name, "scorer": scorer, "strategy": strategy, **summary})
                print(
                    f"{name:15} {scorer:8} {strategy:12} {summary['within_dof']}/{summary['trials']} "
                    f"in {float(summary['mean_acquisitions']):.1f} acquisitions",
                    flush=True,
                )
    args.table.write_text(json.dumps({"trials": args.trials, "rows": rows}, indent=1) + "\n")
    print(markdown(rows))
    print(f"-> {args.table}")


def markdown(rows: list[dict]) -> str:
    """Per set: each scorer x strategy as 'within one depth of field / trials (mean acquisitions)', and
    the pick: among the searches (not the full scan) that spend at most a third of the full scan's
    acquisitions, the most successes, then the fewest acquisitions; the full scan where none does."""
    strategies = list(STRATEGIES)
    lines = [
        "| set | scorer | " + " | ".join(strategies) + " | pick |",
        "|---|---|" + "---|" * (len(strategies) + 1),
    ]
    for name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == name]
        full = [r for r in mine if r["strategy"] == "full_scan"]
        budget = min(float(r["mean_acquisitions"]) for r in full) / 3
        cheap = [r for r in mine if r["strategy"] != "full_scan" and float(r["mean_acquisitions"]) <= budget]
        pick = min(cheap or full, key=lambda r: (-int(r["within_dof"]), float(r["mean_acquisitions"])))
        for scorer in dict.fromkeys(r["scorer"] for r in mine):
            cells = []
            for strategy in strategies:
                (r,) = [r for r in mine if r["scorer"] == scorer and r["strategy"] == strategy]
                cells.append(f"{r['within_dof']}/{r['trials']} ({float(r['mean_acquisitions']):.1f})")
            chosen = f"{pick['strategy']} + {pick['scorer']}" if scorer == mine[0]["scorer"] else ""
            lines.append(f"| {name} | {scorer} | " + " | ".join(cells) + f" | {chosen} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
