"""What ``gmaiqa predict`` scores with when it is given neither ``ckpt=`` nor ``method=``, and
``benchmark methods=[default]``: the scorer gmaiqa ships that did best where it was measured, chosen by
``benchmarks/default_scorer.py`` and recorded, with the whole table it was chosen from, in
``choice.json`` beside this file.

The rule (:func:`choose`) asks for what a user needs on a microscope nobody here has seen: the candidate
with the highest *worst-case* acc over every measured set (the six synthetic presets and the real dev
set), ties broken by the highest worst-case share of exact picks (t0 / groups), then by fewer
milliseconds per image. Candidates: every classical measure, a rank fusion of four measures fixed
before measuring (``gmaiqa.focus.fusion``), and the shipped learned model (``ckpt:default``, which the
name ``default`` no longer means: ``ckpt=default`` still names that model). The learned model becomes the
default the day the script's table prefers it; ``tests/test_default_scorer.py`` holds the recorded
choice to the rule applied to the recorded table, so the choice cannot be edited apart from its evidence.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

from gmaiqa.errors import ConfigError

NAME = "default"  # benchmark methods=[default]; predict without ckpt= / method=
CHOICE_FILE = "choice.json"
RULE = (
    "the highest worst-case acc over the synthetic presets and the real dev set; ties: the highest "
    "worst-case t0 share, then the fewest ms per image"
)


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per candidate over its rows (one per measured set): worst acc, worst t0 share, mean ms per image,
    and the sets it was measured on."""
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(
            row["candidate"], {"worst_acc": math.inf, "worst_t0_share": math.inf, "ms": [], "sets": []}
        )
        entry["worst_acc"] = min(entry["worst_acc"], float(row["acc"]))
        entry["worst_t0_share"] = min(entry["worst_t0_share"], int(row["t0"]) / int(row["groups"]))
        entry["ms"].append(float(row["ms_per_image"]))
        entry["sets"].append(row["set"])
    for entry in out.values():
        entry["mean_ms_per_image"] = sum(entry.pop("ms")) / len(entry["sets"])
    return out


def accuracy(entry: dict) -> tuple[float, float]:
    """What a candidate's picks earn it under :data:`RULE`, before speed: worst acc, worst t0 share."""
    return entry["worst_acc"], entry["worst_t0_share"]


def ranked(summary: dict[str, dict]) -> list[str]:
    """Candidates best first under :data:`RULE`."""
    return sorted(
        summary,
        key=lambda c: (*(-v for v in accuracy(summary[c])), summary[c]["mean_ms_per_image"]),
    )


TRIAL = "trial:"  # a trained candidate measured beside the shipped ones; it ships only by export


def leader(rows: list[dict]) -> str:
    """The best candidate of a table of rows (candidate, set, acc, t0, groups, ms_per_image) under
    :data:`RULE`, trials included; only candidates measured on every set compete."""
    summary = summarise(rows)
    every_set = set().union(*(set(e["sets"]) for e in summary.values()))
    complete = {name: e for name, e in summary.items() if set(e["sets"]) == every_set}
    if not complete:
        raise ValueError("no candidate was measured on every set")
    return ranked(complete)[0]


def better_picks(rows: list[dict], candidate: str, than: str) -> bool:
    """Whether ``candidate`` is ahead of ``than`` under :data:`RULE` before speed is asked."""
    summary = summarise(rows)
    return accuracy(summary[candidate]) > accuracy(summary[than])


def trial_note(rows: list[dict], winner: str) -> str | None:
    """What the benchmark says of a ``trial:`` that leads the table above the recorded ``winner``: that
    it must be exported to ship when its picks are better, and that it does not lead on picks when it
    ties the winner on them and is ahead only on milliseconds, which rows measured in separate runs do
    not compare fairly (ft_stack, the very network ``ckpt:default`` holds in fp16, once 'led' so)."""
    first = leader(rows)
    if first == winner:
        return None
    summary = summarise(rows)
    if better_picks(rows, first, winner):
        return f"{first} leads the table on its picks but is a trial, not shipped"
    return (
        f"{first} ties {winner} on worst-case acc and t0 share and is ahead only on ms per image "
        f"({summary[first]['mean_ms_per_image']:.0f} against {summary[winner]['mean_ms_per_image']:.0f}, "
        f"not comparable across runs): {winner} stays"
    )


def sign_test_p(wins: int, losses: int) -> float:
    """Two-sided exact sign test on the groups where two candidates disagree (one right, one wrong): the
    chance of a split at least this uneven if neither were the better one (binomial, p = 1/2)."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired(rows: list[dict], first: str, second: str) -> list[dict]:
    """Two candidates group by group on every set both were measured on: for acc's sense of right (the
    pick within one image of the clearest) and for exact picks, how many groups only ``first`` gets
    right, how many only ``second`` does, and :func:`sign_test_p` of that split. On 24 groups a lead of
    one or two is a coin's work (p >= 0.5); the table's rule ranks on it all the same, and this says
    which of its differences a reviewer may read as one."""
    by_set: dict[str, dict[str, dict]] = {}
    for row in rows:
        if row["candidate"] in (first, second):
            by_set.setdefault(row["set"], {})[row["candidate"]] = row
    out = []
    for name, pair in by_set.items():
        if len(pair) < 2:
            continue
        for row in pair.values():
            if "offsets" not in row:
                raise ValueError(
                    f"{row['candidate']} on {name} was measured without per-group offsets; measure it "
                    "again (leave its rows out of --reuse)"
                )
        a, b = pair[first]["offsets"], pair[second]["offsets"]
        if len(a) != len(b):
            raise ValueError(f"{first} and {second} were measured on different groups of {name}")
        entry = {"set": name, "groups": len(a)}
        for sense, right in (("within_1", lambda o: o <= 1), ("exact", lambda o: o == 0)):
            only_first = sum(right(x) and not right(y) for x, y in zip(a, b))
            only_second = sum(right(y) and not right(x) for x, y in zip(a, b))
            entry[sense] = {
                "only_first": only_first,
                "only_second": only_second,
                "p": sign_test_p(only_first, only_second),
            }
        out.append(entry)
    if not out:
        raise ValueError(f"{first} and {second} share no measured set")
    return out


def choose(rows: list[dict]) -> str:
    """The default scorer a table supports: :func:`leader` among what gmaiqa ships (measures, the
    fusion, ``ckpt:default``). A ``trial:`` row cannot be recorded, as ``predict`` could not load it;
    when one leads, exporting it over the shipped weights and measuring again is how it wins."""
    return leader([r for r in rows if not r["candidate"].startswith(TRIAL)])


def checked_method(read_checkpoint) -> str:
    """The recorded default scorer, checked as a named one would be before a command runs: a measure
    that resolves, or a checkpoint that ``read_checkpoint`` (``gmaiqa.checkpoints``'s, passed in so this
    light module imports no checkpoint machinery) can read."""
    # here, not at import: loads torch only when this runs
    from gmaiqa.focus import get_measure

    chosen = method()
    if chosen.startswith("ckpt:"):
        read_checkpoint(chosen[len("ckpt:") :])
    else:
        get_measure(chosen)
    return chosen


def choice_path() -> Path:
    return Path(str(resources.files(__name__) / CHOICE_FILE))


def recorded() -> dict:
    """The committed choice: ``method`` (what scores), ``rule``, ``rows`` (the table), ``summary``,
    ``measured`` (command, commit, date)."""
    path = choice_path()
    if not path.is_file():
        raise ConfigError(
            "ckpt",
            f"gmaiqa's default scorer record is missing from this installation ({path})",
            "reinstall gmaiqa, or choose what scores: method=TENG, or ckpt=<a checkpoint>",
        )
    return json.loads(path.read_text())


def method() -> str:
    """What the default scorer is: a focus measure's name, ``rank:...``, or ``ckpt:default``."""
    return str(recorded()["method"])


def describe() -> str:
    """One line for ``predict``: which scorer, and why it is the default."""
    record = recorded()
    chosen = record["method"]
    summary = record["summary"]
    sets = len(summary[chosen]["sets"])
    line = (
        f"{chosen}, gmaiqa's default scorer: the best worst case over {sets} measured sets "
        f"(acc {summary[chosen]['worst_acc']:.2f}"
    )
    model = summary.get("ckpt:default")
    if model is not None and chosen != "ckpt:default":
        line += f"; the shipped model {model['worst_acc']:.2f}"
    measured = record.get("measured", {})
    line += (
        f"), {measured.get('script', 'benchmarks/default_scorer.py')} at {measured.get('commit', '?')[:10]}"
    )
    return line + ". ckpt= or method= chooses another"
