"""Choose gmaiqa's default scorer by measurement (issue 32, item 1): every candidate on every set, the
rule of ``gmaiqa.default_scorer`` applied to the table.

    uv run python benchmarks/default_scorer.py --dev DEV_SET [--work DIR] [--write-choice]

Sets: the six synthetic presets rendered as the shipped model's held-out groups were
(experiments/default-model/run.sh: 24 groups of 256x384 frames, objects at half size, 10-16 images,
seeds 2000-2005; the model never saw them; ``--first-seed 3000 --groups 48`` with a ``--work`` of its own
renders the second draw, which no choice has used), and ``--dev``, a real set in the dataset contract
(benchmarks/real_dev_set.py makes one; it is measured, never tuned on). Candidates: every classical
measure, the rank fusion of ``gmaiqa.focus.fusion.CANDIDATE_MEMBERS``, and ``ckpt:default`` (the shipped
model, scored as ``predict`` scores it). Prints the table and writes it to
``benchmarks/results/default_scorer.json``; ``--write-choice`` also records the winner and its table in
``gmaiqa/default_scorer/choice.json``, what ``predict`` reads. ``--model LABEL=RUN`` adds a trained
candidate (``trial:LABEL``; experiments/default-model/light.sh), ``--reuse TABLE`` (repeatable) keeps
the rows an earlier run measured (acc and t0 are deterministic; their ms were measured then): a table of
another draw lends only its dev rows, a table of another dev set none. ``ms_per_image`` is measured on
the CPU, one set after another: compare candidates within a set, not across sets or machines.
Each row keeps its per-group pick offsets (the JSON's ``group_order`` names the groups);
``--markdown TABLE --compare A B`` sets two candidates side by side group by group, with a sign test of
the groups only one of them gets right, which says whether a lead of a group or two is one.
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
from _common import report  # noqa: E402

from gmaiqa import default_scorer  # noqa: E402
from gmaiqa.benchmark import run_checkpoint, run_classical  # noqa: E402
from gmaiqa.data.specimen import PRESETS  # noqa: E402
from gmaiqa.data.synthetic import SynthConfig  # noqa: E402
from gmaiqa.data.synthetic_dataset import generate  # noqa: E402
from gmaiqa.default_model import default_model_path  # noqa: E402
from gmaiqa.focus import classical_names  # noqa: E402
from gmaiqa.focus.fusion import CANDIDATE_MEMBERS, PREFIX, SEPARATOR  # noqa: E402
from gmaiqa.runs import git_commit  # noqa: E402
from gmaiqa.scoring import labelled_stacks  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# experiments/default-model/run.sh's held-out rendering of the shipped model's recipe
PRESET_ORDER = ("feces", "blood", "leucorrhea", "dense", "fluorescence", "reflected")
HELDOUT = {"height": 256, "width": 384, "object_scale": 0.5, "images": (10, 16)}
FUSION = PREFIX + SEPARATOR.join(CANDIDATE_MEMBERS)
MODEL = "ckpt:default"


FIRST_SEED = 2000  # the held-out draw every choice was made on (preset i: seed 2000 + i) ...
FIRST_DRAW_GROUPS = 24  # ... with this many groups per preset


def synthetic_sets(work: Path, groups: int, first_seed: int = FIRST_SEED) -> dict[str, Path]:
    """The six held-out presets under ``work``, rendered once; a folder rendered with other settings
    (another seed or group count) is refused rather than measured as if it were this draw."""
    sets = {}
    for i, preset in enumerate(PRESET_ORDER):
        folder = work / preset
        cfg = SynthConfig(preset=preset, groups=groups, seed=first_seed + i, **HELDOUT)
        record = folder / "synth.json"
        if record.is_file():
            rendered = json.loads(record.read_text())["config"]
            if (rendered["seed"], rendered["groups"]) != (cfg.seed, cfg.groups):
                raise SystemExit(
                    f"{folder} holds seed {rendered['seed']} with {rendered['groups']} groups, not seed "
                    f"{cfg.seed} with {cfg.groups}: give another --work for this draw"
                )
        else:
            generate(cfg, folder, workers=2)
        sets[preset] = folder
    return sets


def set_stacks(root: Path) -> list:
    """Every group of a measured set, in the order every candidate scores them (the order of its rows'
    ``offsets`` and of the table's ``group_order``)."""
    return labelled_stacks(root, "headers", "all", (0.6, 0.2, 0.2), 0)


def set_groups(stacks: list) -> list[str]:
    return [s.group for s in stacks]


def ranked_singles(rows: list[dict]) -> list[str]:
    """The single classical measures of a table, best first under the rule: fusions, checkpoints,
    trials and model_vote.py's combinations are not single measures."""
    single = set(classical_names())
    return [c for c in default_scorer.ranked(default_scorer.summarise(rows)) if c in single]


def best_single(rows: list[dict]) -> str:
    """The best single classical measure of a table under the rule (the issue's first target is set
    against it)."""
    return ranked_singles(rows)[0]


def scoring_options():
    """``run_checkpoint``'s options for scoring as ``predict`` does: native size, the checkpoint's own
    inference settings."""
    return OmegaConf.create(
        {"resize": None, "block": None, "inference": {}, "num_workers": 0, "pixel_um": None}
    )


def measure_set(name: str, stacks: list, classical: list[str], checkpoints: dict[str, str]) -> list[dict]:
    """Rows for one set: the classical candidates (measures and fusions) in one pass over its images,
    then each checkpoint candidate (label -> what ``ckpt=`` takes) scored as ``predict`` scores it.
    Each row keeps its per-group pick offsets, in :func:`set_stacks`' order, for ``--compare``."""
    device = torch.device("cpu")
    offsets: dict[str, list[int]] = {}
    rows = run_classical(stacks, classical, device, offsets=offsets) if classical else []
    for label, path in checkpoints.items():
        row = run_checkpoint(stacks, path, device, scoring_options(), offsets=offsets)
        offsets[label] = offsets.pop(row["method"])
        rows.append({**row, "method": label})
    return [
        {
            "set": name,
            "candidate": r["method"],
            "acc": r["acc"],
            "t0": r["t0"],
            "groups": r["groups"],
            "srocc": r["srocc"],
            "z_error_um": r["z_error_um"],
            "ms_per_image": r["ms_per_image"],
            "offsets": offsets[r["method"]],
        }
        for r in rows
    ]


def heldout_record(groups: int, first_seed: int) -> dict:
    """How a table's presets were rendered (its ``measured.heldout``), which ``--reuse`` reads to tell
    one draw from another."""
    rendering = {k: list(v) if isinstance(v, tuple) else v for k, v in HELDOUT.items()}
    return {"groups": groups, "first_seed": first_seed, **rendering}


def provenance(script: str, commit: str, started: float, **details) -> dict:
    """A results table's ``measured`` block: the script and the command line that wrote it, the commit,
    the date, ``details`` (its draw, its presets ...) and the seconds since ``started``."""
    return {
        "script": f"benchmarks/{script}",
        "command": " ".join([f"benchmarks/{script}", *sys.argv[1:]]),
        "commit": commit,
        "date": datetime.date.today().isoformat(),
        **details,
        "seconds": round(time.perf_counter() - started),
    }


def table_draw(record: dict) -> tuple[int, int] | None:
    """(first seed, groups per preset) of the draw a table's preset rows were measured on; None when it
    cannot be told. A table that records no seed was written before ``--first-seed`` existed: of the
    first draw when its presets have the first draw's group count, else of a draw it does not name."""
    heldout = record.get("measured", {}).get("heldout") or {}
    if "first_seed" in heldout:
        return int(heldout["first_seed"]), int(heldout["groups"])
    counts = {int(r["groups"]) for r in record["rows"] if r["set"] in PRESET_ORDER}
    return (FIRST_SEED, FIRST_DRAW_GROUPS) if counts == {FIRST_DRAW_GROUPS} else None


def reused_rows(
    tables: list[Path], classical: list[str], draw: tuple[int, int], group_order: dict[str, list[str]]
) -> list[dict]:
    """The rows of earlier tables this run keeps: only candidates this script measures (model_vote.py's
    combinations are left out), the first table's row where several have one, a preset's rows only from
    a table of this ``draw`` (first seed, groups), and any set's rows only where the table names the same
    groups for it as ``group_order`` (this run's). So a table of another draw lends its dev rows (the real
    set does not depend on the draw) and a table of another dev set is refused."""
    kept: dict[tuple[str, str], dict] = {}
    for table in tables:
        record = json.loads(table.read_text())
        their_draw, their_order = table_draw(record), record.get("group_order", {})
        other_draw, unordered = set(), set()
        for row in record["rows"]:
            candidate, name = row["candidate"], row["set"]
            measured_here = candidate in classical or candidate == MODEL
            if not (measured_here or candidate.startswith(default_scorer.TRIAL)) or name not in group_order:
                continue
            if name in PRESET_ORDER and their_draw != draw:
                other_draw.add(name)
                continue
            if name not in their_order:
                unordered.add(name)
                continue
            if their_order[name] != group_order[name]:
                raise SystemExit(
                    f"{table}: its {name} set holds other groups than this run's {name}: reuse a table "
                    "measured on the same sets"
                )
            kept.setdefault((name, candidate), row)
        if other_draw:
            seeds = (
                "a draw it does not record"
                if their_draw is None
                else f"seed {their_draw[0]}, {their_draw[1]} groups"
            )
            print(
                f"{table}: its rows on {', '.join(sorted(other_draw))} are measured again: {seeds}, "
                f"not seed {draw[0]}, {draw[1]} groups"
            )
        if unordered:
            print(
                f"{table}: its rows on {', '.join(sorted(unordered))} are measured again: it records no "
                "group order for them, so they cannot be told to be this run's sets"
            )
    return list(kept.values())


def complete_rows(rows: list[dict], sets: list[str]) -> list[dict]:
    """The rows of candidates measured on every set: a reused ``trial:`` of another draw has only its dev
    row here (this run does not measure it without ``--model``), and a table is one row per candidate
    and set. What is left out stays in the table it came from."""
    measured_on: dict[str, set[str]] = {}
    for row in rows:
        measured_on.setdefault(row["candidate"], set()).add(row["set"])
    partial = sorted(c for c, on in measured_on.items() if on != set(sets))
    if partial:
        print(f"left out, not measured on every set: {', '.join(partial)}")
    return [r for r in rows if r["candidate"] not in partial]


def compare_markdown(rows: list[dict], first: str, second: str) -> str:
    """Two candidates group by group (``gmaiqa.default_scorer.paired``): per set their acc, then for
    picks within one image and for exact picks the groups only each gets right and the sign test's p."""
    acc = {(r["candidate"], r["set"]): r["acc"] for r in rows}
    lines = [
        f"| set | {first} acc | {second} acc | within 1: only {first} / only {second} / p "
        f"| exact: only {first} / only {second} / p |",
        "|---|---|---|---|---|",
    ]
    for e in default_scorer.paired(rows, first, second):
        cells = [
            f"{e[s]['only_first']} / {e[s]['only_second']} / {e[s]['p']:.2f}" for s in ("within_1", "exact")
        ]
        lines.append(
            f"| {e['set']} ({e['groups']}) | {acc[first, e['set']]:.2f} | {acc[second, e['set']]:.2f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def full_markdown(rows: list[dict]) -> str:
    """Every candidate on every set, ranked as the rule ranks them; each cell ``acc / t0 / SROCC / ms``
    (SROCC ``-`` where the set has no scores, ms per image measured in that set's pass)."""
    ranked = default_scorer.ranked(default_scorer.summarise(rows))
    sets = list(dict.fromkeys(r["set"] for r in rows))
    lines = [
        "| candidate | " + " | ".join(f"{name}: acc / t0 / SROCC / ms" for name in sets) + " |",
        "|---|" + "---|" * len(sets),
    ]
    for c in ranked:
        cells = []
        for name in sets:
            (r,) = [r for r in rows if r["candidate"] == c and r["set"] == name]
            srocc = "-" if r["srocc"] is None or r["srocc"] != r["srocc"] else f"{r['srocc']:.2f}"
            cells.append(f"{r['acc']:.2f} / {r['t0']} / {srocc} / {r['ms_per_image']:.0f}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict], top: int | None = None) -> str:
    """The table as Markdown, best first under the rule: per set acc (t0 / groups), then the worst
    cases and the mean ms per image; ``top``: the first N candidates, the best single classical measure
    (the issue's first target is set against it), Tenengrad, LMG, the fusion and every checkpoint."""
    summary = default_scorer.summarise(rows)
    sets = list(dict.fromkeys(r["set"] for r in rows))
    ranked = default_scorer.ranked(summary)
    if top is not None:
        compound = (PREFIX, "ckpt:", default_scorer.TRIAL)
        always = (best_single(rows), "TENG", "LMG", *compound)
        ranked = [c for i, c in enumerate(ranked) if i < top or c.startswith(always)]
    lines = [
        "| candidate | " + " | ".join(sets) + " | worst acc | worst t0 share | ms / image |",
        "|---|" + "---|" * (len(sets) + 3),
    ]
    for c in ranked:
        cells = []
        for name in sets:
            (r,) = [r for r in rows if r["candidate"] == c and r["set"] == name]
            cells.append(f"{r['acc']:.2f} ({r['t0']}/{r['groups']})")
        e = summary[c]
        lines.append(
            f"| {c} | " + " | ".join(cells) + f" | {e['worst_acc']:.2f} | {e['worst_t0_share']:.2f} | "
            f"{e['mean_ms_per_image']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dev", type=Path, help="a real set in the dataset contract (required to measure)")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "default-scorer")
    parser.add_argument("--groups", type=int, default=FIRST_DRAW_GROUPS, help="held-out groups per preset")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=FIRST_SEED,
        help="preset i is rendered from this seed + i (another draw: a --work of its own)",
    )
    parser.add_argument("--no-model", action="store_true", help="leave ckpt:default out (a quick look)")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="LABEL=RUN",
        help="a trial checkpoint (run folder, .ckpt or export) as candidate trial:LABEL; repeatable",
    )
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="a table this script (or model_vote.py) wrote: its rows are not measured again; repeatable",
    )
    parser.add_argument("--write-choice", action="store_true", help="record the winner for predict")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "default_scorer.json")
    parser.add_argument(
        "--markdown", type=Path, help="print this table (a JSON it wrote) as Markdown and stop"
    )
    parser.add_argument("--top", type=int, help="with --markdown: the best N and every checkpoint")
    parser.add_argument(
        "--full", action="store_true", help="with --markdown: every candidate x set, SROCC and ms too"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("FIRST", "SECOND"),
        help="with --markdown: two candidates group by group, with a sign test per set",
    )
    args = parser.parse_args()
    if args.markdown:
        rows = json.loads(args.markdown.read_text())["rows"]
        if args.compare:
            print(compare_markdown(rows, *args.compare))
        else:
            print(full_markdown(rows) if args.full else markdown(rows, args.top))
        return
    assert set(PRESET_ORDER) == set(PRESETS), "a preset was added: measure it too"
    if args.dev is None:
        parser.error("--dev is required: the real dev set (benchmarks/real_dev_set.py)")
    if args.write_choice and args.no_model:
        parser.error("--write-choice needs every candidate, the shipped model included")
    if args.write_choice and args.first_seed != FIRST_SEED:
        parser.error("--write-choice records the draw every table was measured on: leave --first-seed out")
    started = time.perf_counter()
    commit = git_commit() or "unknown"  # the code that measures, whatever lands while it runs
    sets = {**synthetic_sets(args.work, args.groups, args.first_seed), "dev": args.dev}
    checkpoints = {} if args.no_model else {MODEL: default_scorer.NAME}
    checkpoints.update({f"trial:{m.split('=', 1)[0]}": m.split("=", 1)[1] for m in args.model})
    classical = [*classical_names(), FUSION]
    stacks = {name: set_stacks(root) for name, root in sets.items()}
    group_order = {name: set_groups(held) for name, held in stacks.items()}
    reused = reused_rows(args.reuse, classical, (args.first_seed, args.groups), group_order)
    rows = []
    for name, held in stacks.items():
        have = {r["candidate"] for r in reused if r["set"] == name}
        rows += [r for r in reused if r["set"] == name]
        todo = {label: path for label, path in checkpoints.items() if label not in have}
        rows += measure_set(name, held, [c for c in classical if c not in have], todo)
        print(f"{name}: measured ({time.perf_counter() - started:.0f} s so far)", flush=True)
    rows = complete_rows(rows, list(sets))
    summary = default_scorer.summarise(rows)
    winner = default_scorer.choose(rows)
    ranked = default_scorer.ranked(summary)
    table = [
        {
            "candidate": c,
            **{
                f"{s}_acc_t0": next(
                    f"{r['acc']:.3f} ({r['t0']})" for r in rows if r["candidate"] == c and r["set"] == s
                )
                for s in sets
            },
            "worst_acc": summary[c]["worst_acc"],
            "worst_t0_share": summary[c]["worst_t0_share"],
            "mean_ms": summary[c]["mean_ms_per_image"],
        }
        for c in ranked
    ]
    report("default_scorer", table, args.out)
    record = json.loads(args.out.read_text())
    record["rows"], record["winner"] = rows, winner
    record["group_order"] = group_order
    measured = provenance(
        "default_scorer.py",
        commit,
        started,
        dev_set="evanmacbride/microscope-autofocus sample_data (benchmarks/real_dev_set.py)",
        heldout=heldout_record(args.groups, args.first_seed),
        reused=[str(table) for table in args.reuse] or None,
    )
    args.out.write_text(json.dumps({**record, "measured": measured}, indent=1))
    print(f"winner under the rule ({default_scorer.RULE}): {winner}")
    note = default_scorer.trial_note(rows, winner)
    leader = default_scorer.leader(rows)
    if note and default_scorer.better_picks(rows, leader, winner):
        note += (
            f": `gmaiqa export ckpt={checkpoints.get(leader, 'RUN')} out={default_model_path()} "
            "format=weights overwrite=true`, "
            "then measure again with --reuse of this table without its ckpt:default rows"
        )
    if note:
        print(note)
    if args.write_choice:
        choice = {
            "method": winner,
            "rule": default_scorer.RULE,
            "summary": summary,
            "rows": rows,
            "measured": measured,
        }
        default_scorer.choice_path().write_text(json.dumps(choice, indent=1) + "\n")
        print(f"-> {default_scorer.choice_path()}")


if __name__ == "__main__":
    main()
