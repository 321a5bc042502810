"""How much any weight of a tilt could move the worst case (issue 32; experiments/default-model item
(9)): every weight of ``model_vote.TILT_WEIGHTS`` scored on the held-out draws themselves.

    uv run python benchmarks/tilt_bound.py --draw DIR 24 2000 --draw DIR2 48 3000 [--out JSON]

``model_vote.py --tilt`` fits a tilt's weight on the shipped recipe's validation split, which flatters
the model (VOLA alone ties it there), and a fit set that is not the model's own was left untested. This
script asks the question that decides whether such a fit set is worth building: if the weight were
chosen on the held-out sets themselves (an oracle no fit can beat, and so never a candidate: a weight
chosen here would be chosen on the groups it is judged on), how far above the model alone (w = 0) could
the worst case over the presets go, on each draw? When the oracle gains nothing, or one group, no fit
set can gain more.

Each ``--draw`` is a ``model_vote.py --work`` folder, its groups per preset and its first seed; the
members' per-image scores come from that folder's cache (a partner the cache lacks is measured and
added; a missing cache means the model's pass: 1,747 s for 24 groups a preset, 2,389 s for 48, on a
2-core CPU). The partners are the tilts of ``--record`` (model_vote.py's output with ``--tilt``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from default_scorer import (  # noqa: E402
    PRESET_ORDER,
    ROOT,
    heldout_record,
    provenance,
    set_stacks,
    synthetic_sets,
)
from model_vote import TILT, TILT_WEIGHTS, measure_members, tilt_grid  # noqa: E402

from gmaiqa.runs import git_commit  # noqa: E402

RECORD = ROOT / "benchmarks" / "results" / "model_tilt.json"


def partners_of(record: dict) -> list[str]:
    """The partner measures of a ``model_vote.py --tilt`` record's tilts, in its order."""
    return [label.split("+", 1)[1] for label in record["tilt_fit"]]


def draw_bound(sets: dict[str, list], measured: dict[str, dict], partner: str) -> list[dict]:
    """Per weight: each set's acc and exact picks, and the worst acc over the sets (``worst_acc``)."""
    per_set = {name: tilt_grid(stacks, measured[name], partner) for name, stacks in sets.items()}
    rows = []
    for i, weight in enumerate(TILT_WEIGHTS):
        results = {name: {k: grid[i][k] for k in ("acc", "t0", "groups")} for name, grid in per_set.items()}
        rows.append({"weight": weight, "sets": results, "worst_acc": min(r["acc"] for r in results.values())})
    return rows


def gain(rows: list[dict]) -> float:
    """How far the best weight's worst acc is above the model alone's (w = 0)."""
    return max(r["worst_acc"] for r in rows) - rows[0]["worst_acc"]


def markdown(rows: list[dict]) -> str:
    sets = list(rows[0]["sets"])
    lines = ["| w | " + " | ".join(sets) + " | worst acc |", "|---" * (len(sets) + 2) + "|"]
    for r in rows:
        cells = [f"{r['sets'][s]['acc']:.2f} ({r['sets'][s]['t0']})" for s in sets]
        lines.append(f"| {r['weight']:g} | " + " | ".join(cells) + f" | {r['worst_acc']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--draw",
        nargs=3,
        action="append",
        required=True,
        metavar=("WORK", "GROUPS", "FIRST_SEED"),
        help="a model_vote.py --work folder, its groups per preset and first seed; repeatable",
    )
    parser.add_argument("--record", type=Path, default=RECORD, help="model_vote.py --tilt's output")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tilt_bound.json")
    args = parser.parse_args()
    started = time.perf_counter()
    commit = git_commit() or "unknown"
    partners = partners_of(json.loads(args.record.read_text()))
    draws = []
    for work, groups, first_seed in args.draw:
        work, groups, first_seed = Path(work), int(groups), int(first_seed)
        sets = {name: set_stacks(root) for name, root in synthetic_sets(work, groups, first_seed).items()}
        measured = {
            name: measure_members(stacks, partners, work / "model_vote" / f"{name}.json")
            for name, stacks in sets.items()
        }
        bounds = {partner: draw_bound(sets, measured, partner) for partner in partners}
        draws.append({"heldout": heldout_record(groups, first_seed), "bounds": bounds})
        for partner, rows in bounds.items():
            print(
                f"\n{TILT}default+{partner}, seeds {first_seed}+, {groups} groups a preset: the oracle "
                f"gains {gain(rows):+.2f} in worst acc over the model alone"
            )
            print(markdown(rows))
    record = {
        "draws": draws,
        "measured": provenance(
            "tilt_bound.py", commit, started, presets=list(PRESET_ORDER), weights=list(TILT_WEIGHTS)
        ),
    }
    args.out.write_text(json.dumps(record, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
