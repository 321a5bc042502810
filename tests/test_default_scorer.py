"""gmaiqa's default scorer (gmaiqa.default_scorer, issue 32): the recorded choice is the rule applied to
the recorded table, the rule itself on hand-made tables, and `predict` without ckpt=/method= and
`benchmark methods=[default]` score with it and say so."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gmaiqa import default_scorer
from gmaiqa.cli import main
from gmaiqa.focus import classical_names
from gmaiqa.focus.fusion import CANDIDATE_MEMBERS
from helpers import previous_default

PRESETS = {"feces", "blood", "leucorrhea", "dense", "fluorescence", "reflected"}


def test_the_recorded_choice_is_the_rule_applied_to_its_table():
    record = default_scorer.recorded()
    rows = record["rows"]
    assert record["method"] == default_scorer.choose(rows) and record["rule"] == default_scorer.RULE
    assert record["summary"] == json.loads(json.dumps(default_scorer.summarise(rows)))
    sets = {r["set"] for r in rows}
    assert sets == PRESETS | {"dev"}  # every synthetic preset and the real dev set
    candidates = {r["candidate"] for r in rows}
    fusion = "rank:" + "+".join(CANDIDATE_MEMBERS)
    shipped = {*classical_names(), fusion, "ckpt:default"}
    # and trained trials (experiments/default-model/light.sh), which compete but ship only by winning
    assert shipped <= candidates and all(c.startswith("trial:") for c in candidates - shipped)
    assert record["method"] in shipped
    for candidate in candidates:  # each measured on every set, once
        assert sorted(r["set"] for r in rows if r["candidate"] == candidate) == sorted(sets)
    assert record["measured"]["commit"] != "unknown" and record["measured"]["heldout"]["groups"] >= 20


def test_the_recorded_choice_was_made_on_the_committed_trials_table():
    """``predict`` reads the choice; the README and experiments/default-model quote the trials table.
    Recording the choice from that table (``--reuse TABLE --write-choice``) keeps the two one table:
    a table measured again and not recorded would leave predict's record on figures no page shows."""
    root = Path(__file__).resolve().parents[1]
    trials = json.loads((root / "benchmarks" / "results" / "default_scorer_trials.json").read_text())
    key = lambda row: (row["set"], row["candidate"])  # noqa: E731
    assert sorted(default_scorer.recorded()["rows"], key=key) == sorted(trials["rows"], key=key)


def test_the_first_draw_table_of_shipped_candidates_is_the_trials_table_without_its_trials():
    """default_scorer.json (the script's default --out, which experiments/default-model/light.sh reuses)
    holds what predict can choose from on the first draw: the trials table's rows less its trials, so a
    model shipped since cannot leave its predecessor's rows in it under ``ckpt:default``."""
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    shipped = json.loads((results / "default_scorer.json").read_text())
    trials = json.loads((results / "default_scorer_trials.json").read_text())
    key = lambda row: (row["set"], row["candidate"])  # noqa: E731
    expected = [r for r in trials["rows"] if not r["candidate"].startswith("trial:")]
    assert sorted(shipped["rows"], key=key) == sorted(expected, key=key)
    assert shipped["group_order"] == trials["group_order"]


@pytest.mark.parametrize(
    "table", ["default_scorer_trials.json", "default_scorer_confirm.json"], ids=["first", "second"]
)
def test_the_readme_table_is_the_committed_table(table):
    """The README quotes the default-scorer tables of both draws as ``--markdown TABLE --top 3`` prints
    them from the committed JSON, so a re-measured table cannot leave stale figures in the README."""
    root = Path(__file__).resolve().parents[1]
    printed = _markdown(root / "benchmarks" / "results" / table, top=3).strip()
    assert printed.count("\n") >= 5 and "| ckpt:default |" in printed
    assert printed in (root / "README.md").read_text(), f"README's table differs from {table} --top 3"


def test_the_trials_on_the_second_draw_stand_beside_its_shipped_rows():
    """default_scorer_trials_confirm.json adds trained candidates to the second draw: every row of a
    shipped candidate is default_scorer_confirm.json's as it was (reused, not measured again), each trial
    has a row on every set, and experiments/default-model quotes it as ``--markdown TABLE --top 1``
    prints it."""
    root = Path(__file__).resolve().parents[1]
    results = root / "benchmarks" / "results"
    trials = json.loads((results / "default_scorer_trials_confirm.json").read_text())
    confirm = json.loads((results / "default_scorer_confirm.json").read_text())
    assert trials["measured"]["heldout"] == confirm["measured"]["heldout"]
    rows = {(r["set"], r["candidate"]): r for r in trials["rows"]}
    shipped = {(r["set"], r["candidate"]): r for r in confirm["rows"]}
    assert {k: rows[k] for k in shipped} == shipped
    added = {c for _, c in rows.keys() - shipped.keys()}
    assert added and all(c.startswith("trial:") for c in added)
    assert all((name, c) in rows for c in added for name in PRESETS | {"dev"})
    printed = _markdown(results / "default_scorer_trials_confirm.json", top=1)
    table = "\n".join(line for line in printed.splitlines() if line.startswith("|"))
    assert table in (root / "experiments" / "default-model" / "README.md").read_text()


def _markdown(table: Path, top: int) -> str:
    """What ``benchmarks/default_scorer.py --markdown TABLE --top N`` prints: the pages quote it."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "default_scorer.py"
    return subprocess.run(
        [sys.executable, str(script), "--markdown", str(table), "--top", str(top)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_second_draw_table_measured_every_shipped_candidate_and_repeats_what_it_shares():
    """The second draw (seeds 3000-3005, 48 groups) with every candidate the rule may choose from: its
    VOLA and fusion rows are model_vote_confirm.json's (the same draw), as are the trials table's rows
    of the VGG16-BN that table measured as the shipped model, and its dev rows the first table's (the
    same real set), group by group."""
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    confirm = json.loads((results / "default_scorer_confirm.json").read_text())
    assert confirm["measured"]["heldout"]["first_seed"] == 3000
    assert confirm["measured"]["heldout"]["groups"] == 48
    rows = {(r["set"], r["candidate"]): r for r in confirm["rows"]}
    fusion = "rank:" + "+".join(CANDIDATE_MEMBERS)
    shipped = {*classical_names(), fusion, "ckpt:default"}
    assert {c for _, c in rows} == shipped and {s for s, _ in rows} == PRESETS | {"dev"}
    assert len(rows) == len(shipped) * 7
    votes = json.loads((results / "model_vote_confirm.json").read_text())
    trials = json.loads((results / "default_scorer_trials.json").read_text())
    shared = [r for r in votes["rows"] if r["candidate"] in shipped - {"ckpt:default"}] + [
        r for r in trials["rows"] if r["set"] == "dev" and r["candidate"] in shipped
    ]
    assert len(shared) == 2 * 6 + len(shipped)
    for row in shared:
        assert rows[row["set"], row["candidate"]]["offsets"] == row["offsets"], row["candidate"]
    second = json.loads((results / "default_scorer_trials_confirm.json").read_text())["rows"]
    voted = {r["set"]: r for r in second if r["candidate"] == previous_default.ROWS}
    for row in (r for r in votes["rows"] if r["candidate"] == "ckpt:default"):
        assert voted[row["set"]]["offsets"] == row["offsets"], row["set"]


def rows_of(
    candidate: str, accs: list[float], t0s: list[int], ms: float = 10.0, groups: int = 10
) -> list[dict]:
    return [
        {"candidate": candidate, "set": f"s{i}", "acc": a, "t0": t, "groups": groups, "ms_per_image": ms}
        for i, (a, t) in enumerate(zip(accs, t0s))
    ]


def test_the_rule_takes_the_best_worst_case_then_exact_picks_then_speed():
    # B has the higher mean acc but the lower worst case: A wins
    rows = rows_of("A", [0.8, 0.8, 0.8], [5, 5, 5]) + rows_of("B", [1.0, 1.0, 0.7], [9, 9, 9])
    assert default_scorer.choose(rows) == "A"
    # the same worst acc: the higher worst share of exact picks
    rows = rows_of("A", [0.8, 0.9], [3, 9]) + rows_of("B", [0.8, 0.8], [4, 4])
    assert default_scorer.choose(rows) == "B"
    # the same again: the faster
    rows = rows_of("A", [0.8, 0.9], [4, 9], ms=50) + rows_of("B", [0.8, 0.8], [4, 4], ms=5)
    assert default_scorer.choose(rows) == "B"
    # a candidate missing a set does not compete, however good
    rows = rows_of("A", [0.5, 0.5], [1, 1]) + rows_of("B", [1.0], [10])
    assert default_scorer.choose(rows) == "A"
    # t0 is compared as a share of each set's groups: A's fewest exact picks (9 of 10) outnumber B's (6 of
    # 10), but A finds only half of the larger set's 20
    rows = rows_of("A", [0.8], [9], groups=10) + [{**rows_of("A", [0.8], [10], groups=20)[0], "set": "s1"}]
    rows += rows_of("B", [0.8], [6], groups=10) + [{**rows_of("B", [0.8], [12], groups=20)[0], "set": "s1"}]
    assert default_scorer.choose(rows) == "B"


def test_a_trial_that_leads_the_table_is_not_recorded_as_the_default():
    """A ``trial:`` row is a checkpoint outside the package: ``predict`` could not load it, so the
    choice stays with the best shipped candidate until the trial is exported and measured as
    ``ckpt:default``."""
    rows = rows_of("trial:better", [0.9, 0.9], [8, 8]) + rows_of("ckpt:default", [0.7, 0.9], [7, 7])
    rows += rows_of("TENG", [0.6, 1.0], [6, 9])
    assert default_scorer.leader(rows) == "trial:better"
    assert default_scorer.choose(rows) == "ckpt:default"
    with pytest.raises(ValueError, match="no candidate was measured on every set"):
        default_scorer.choose(rows_of("trial:only", [1.0], [1]))


def test_a_trial_ahead_only_on_milliseconds_is_not_said_to_lead():
    """The benchmark's note on a leading trial: 'export it' when its picks are better than the winner's;
    when they tie and the trial is ahead only on ms per image (measured in another run), it says so and
    that the winner stays."""
    shipped = rows_of("ckpt:default", [0.8, 0.9], [7, 7], ms=2700)
    assert (
        default_scorer.trial_note(shipped + rows_of("trial:x", [0.8, 0.8], [7, 7], ms=2900), "ckpt:default")
        is None
    )
    note = default_scorer.trial_note(
        shipped + rows_of("trial:x", [0.9, 0.9], [7, 7], ms=2900), "ckpt:default"
    )
    assert note == "trial:x leads the table on its picks but is a trial, not shipped"
    note = default_scorer.trial_note(
        shipped + rows_of("trial:x", [0.8, 1.0], [7, 8], ms=2600), "ckpt:default"
    )
    assert note.startswith("trial:x ties ckpt:default on worst-case acc and t0 share and is ahead only on ms")
    assert "(2600 against 2700" in note and note.endswith("ckpt:default stays")


def test_the_sign_test_has_the_binomial_tails():
    # no disagreement, or an even split: no evidence either way
    assert default_scorer.sign_test_p(0, 0) == 1.0 and default_scorer.sign_test_p(3, 3) == 1.0
    # 5 groups only one candidate gets right, none the other way: 2 * (1/2)^5
    assert default_scorer.sign_test_p(5, 0) == default_scorer.sign_test_p(0, 5) == pytest.approx(1 / 16)
    # 9 against 1: 2 * (1 + 10) / 2^10
    assert default_scorer.sign_test_p(9, 1) == pytest.approx(22 / 1024)
    # two groups ahead on 24 alike is what a coin does (the table's usual margin)
    assert default_scorer.sign_test_p(2, 0) == 0.5


def test_paired_counts_the_groups_only_one_candidate_gets_right():
    def row(candidate, name, offsets):
        right = sum(o <= 1 for o in offsets)
        return {
            "candidate": candidate,
            "set": name,
            "acc": right / len(offsets),
            "t0": sum(o == 0 for o in offsets),
            "groups": len(offsets),
            "ms_per_image": 1.0,
            "offsets": offsets,
        }

    rows = [row("A", "s0", [0, 1, 2, 3, 0]), row("B", "s0", [0, 0, 0, 2, 2]), row("C", "s1", [0])]
    (entry,) = default_scorer.paired(rows, "A", "B")  # s1 has only C: not a shared set
    assert entry["set"] == "s0" and entry["groups"] == 5
    # within one image: A alone on group 4, B alone on group 2
    assert entry["within_1"] == {"only_first": 1, "only_second": 1, "p": 1.0}
    # exact: A alone on group 4; B alone on groups 1 and 2
    assert entry["exact"] == {"only_first": 1, "only_second": 2, "p": 1.0}
    swapped = default_scorer.paired(rows, "B", "A")[0]["exact"]
    assert (swapped["only_first"], swapped["only_second"]) == (2, 1)
    old = [{k: v for k, v in rows[1].items() if k != "offsets"}]
    with pytest.raises(ValueError, match="B on s0 was measured without per-group offsets"):
        default_scorer.paired(rows[:1] + old, "A", "B")
    with pytest.raises(ValueError, match="different groups of s0"):
        default_scorer.paired(rows[:1] + [row("B", "s0", [0, 0])], "A", "B")
    with pytest.raises(ValueError, match="share no measured set"):
        default_scorer.paired(rows, "A", "C")


@pytest.fixture
def record_of(tmp_path, monkeypatch):
    """Point the default scorer at a record naming ``method``."""

    def use(method: str) -> None:
        rows = rows_of(method, [1.0], [1])
        path = tmp_path / "choice.json"
        record = {"method": method, "rule": default_scorer.RULE, "rows": rows}
        record["summary"] = default_scorer.summarise(rows)
        path.write_text(json.dumps(record))
        monkeypatch.setattr(default_scorer, "choice_path", lambda: path)

    return use


def predicted(out) -> dict[str, list[str]]:
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(out / "clearest.csv", newline="") as handle:
        clearest = {row["group"]: row["image"] for row in csv.DictReader(handle)}
    return {"scores": [r["score"] for r in rows], "clearest": clearest}


def test_predict_with_nothing_named_scores_with_the_recorded_default_and_says_why(
    tiny_feces, tmp_path, capsys, record_of
):
    record_of("rank:TENG+GLVN")
    base = [f"input={tiny_feces}", "num_workers=0", "clearest_images=false"]
    assert main(["predict", *base, f"out={tmp_path / 'default'}"]) == 0
    said = capsys.readouterr().out
    assert "scorer: rank:TENG+GLVN, gmaiqa's default scorer: the best worst case over 1 measured sets" in said
    assert "ckpt= or method= chooses another" in said
    assert main(["predict", *base, f"out={tmp_path / 'named'}", "method=rank:TENG+GLVN"]) == 0
    assert predicted(tmp_path / "default") == predicted(tmp_path / "named")


def test_predict_follows_a_default_that_is_the_shipped_model(tiny_feces, tmp_path, capsys, record_of):
    record_of("ckpt:default")
    base = [f"input={tiny_feces}", "num_workers=0", "clearest_images=false"]
    assert main(["predict", *base, f"out={tmp_path / 'default'}"]) == 0
    assert "model: gmaiqa default model" in capsys.readouterr().out
    assert main(["predict", *base, f"out={tmp_path / 'named'}", "ckpt=default"]) == 0
    assert predicted(tmp_path / "default") == predicted(tmp_path / "named")


def test_benchmark_default_is_a_row_of_its_own_with_the_named_methods_figures(
    tiny_feces, tmp_path, record_of
):
    record_of("GLVN")
    out = tmp_path / "bench"
    args = ["benchmark", f"data.root={tiny_feces}", f"out={out}", "methods=[default,GLVN]", "curves=[g0001]"]
    assert main([*args, "logger.wandb.mode=disabled", "accelerator=cpu"]) == 0
    rows = {r["method"]: r for r in csv.DictReader(open(out / "benchmark.csv"))}
    assert set(rows) == {"default (GLVN)", "GLVN"}
    mine, named = rows["default (GLVN)"], rows["GLVN"]
    assert [mine[k] for k in ("acc", "t0", "t1", "srocc")] == [named[k] for k in ("acc", "t0", "t1", "srocc")]
    assert (out / "curves" / "g0001.png").is_file()


def test_a_measure_and_a_checkpoint_together_and_a_missing_record_are_one_message(
    tiny_feces, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out"
    assert main(["predict", f"input={tiny_feces}", f"out={out}", "ckpt=default", "method=TENG"]) == 2
    assert "give one: ckpt= for a network, method= for a classical focus measure" in capsys.readouterr().err
    monkeypatch.setattr(default_scorer, "choice_path", lambda: tmp_path / "gone.json")
    assert main(["predict", f"input={tiny_feces}", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert "default scorer record is missing" in err and "gone.json" in err and "method=TENG" in err
    assert main(["benchmark", f"data.root={tiny_feces}", f"out={out}", "methods=[default]"]) == 2
    assert "default scorer record is missing" in capsys.readouterr().err
    assert not out.exists()


def test_a_held_out_folder_of_another_draw_is_refused_not_measured(tmp_path, monkeypatch):
    """benchmarks/default_scorer.py renders each draw once under --work; a folder holding another
    seed or group count must not be scored as if it were the draw asked for."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from default_scorer import PRESET_ORDER, synthetic_sets

    for i, preset in enumerate(PRESET_ORDER):
        (tmp_path / preset).mkdir()
        config = {"seed": 2000 + i, "groups": 24}
        (tmp_path / preset / "synth.json").write_text(json.dumps({"config": config}))
    assert set(synthetic_sets(tmp_path, 24)) == set(PRESET_ORDER)  # the draw asked for: reused
    with pytest.raises(SystemExit, match="holds seed 2000 with 24 groups, not seed 3000 with 48"):
        synthetic_sets(tmp_path, 48, first_seed=3000)
    with pytest.raises(SystemExit, match="not seed 2000 with 48"):
        synthetic_sets(tmp_path, 48)


def test_reused_rows_keep_own_candidates_first_table_first_and_only_the_dev_rows_of_another_draw(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from default_scorer import reused_rows, table_draw

    order = {"feces": ["g0", "g1"], "dev": ["tile0"]}

    def table(name: str, rows: list[tuple], seed: int | None = 3000, dev=("tile0",)) -> Path:
        keys = ("set", "candidate", "groups", "acc")
        record = {
            "rows": [dict(zip(keys, row, strict=True)) for row in rows],
            "group_order": {"feces": order["feces"], "dev": list(dev)},
        }
        if seed is not None:
            record["measured"] = {"heldout": {"first_seed": seed, "groups": 48}}
        path = tmp_path / name
        path.write_text(json.dumps(record))
        return path

    first = table("a.json", [("feces", "VOLA", 48, 0.5), ("feces", "vote:default+VOLA", 48, 0.9)])
    second = table(
        "b.json", [("feces", "VOLA", 48, 0.1), ("dev", "TENG", 10, 1.0), ("dev", "trial:x", 10, 0.7)]
    )
    kept = reused_rows([first, second], ["VOLA", "TENG"], (3000, 48), order)
    assert {(r["set"], r["candidate"]): r["acc"] for r in kept} == {
        ("feces", "VOLA"): 0.5,  # the first table's
        ("dev", "TENG"): 1.0,
        ("dev", "trial:x"): 0.7,
    }
    # the first draw asked for: the 48-group tables of seed 3000 lend their dev rows only
    kept = reused_rows([first, second], ["VOLA", "TENG"], (2000, 24), order)
    assert {(r["set"], r["candidate"]) for r in kept} == {("dev", "TENG"), ("dev", "trial:x")}
    assert (
        "rows on feces are measured again: seed 3000, 48 groups, not seed 2000, 24" in capsys.readouterr().out
    )
    unordered = tmp_path / "d.json"
    unordered.write_text(json.dumps({"rows": [{"set": "dev", "candidate": "TENG", "groups": 10}]}))
    assert reused_rows([unordered], ["TENG"], (3000, 48), order) == []
    assert "records no group order for them" in capsys.readouterr().out
    # a table written before --first-seed existed: 24 groups were the first draw, 48 an unnamed one
    old = {"rows": [{"set": "feces", "groups": 24}, {"set": "dev", "groups": 10}]}
    assert table_draw(old) == (2000, 24)
    assert table_draw({"rows": [{"set": "feces", "groups": 48}]}) is None
    other_dev = table("c.json", [("dev", "TENG", 10, 0.2)], dev=("another",))
    with pytest.raises(SystemExit, match="its dev set holds other groups than this run's dev"):
        reused_rows([other_dev], ["TENG"], (3000, 48), order)


def test_a_candidate_reused_on_some_sets_only_is_left_out_of_the_table(monkeypatch, capsys):
    """A trial reused from another draw's table brings its dev row alone; the table and the rule hold
    candidates measured on every set, so it is left out and said to be."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from default_scorer import complete_rows

    rows = [
        {"candidate": "VOLA", "set": "feces"},
        {"candidate": "VOLA", "set": "dev"},
        {"candidate": "trial:x", "set": "dev"},
    ]
    assert complete_rows(rows, ["feces", "dev"]) == rows[:2]
    assert "left out, not measured on every set: trial:x" in capsys.readouterr().out
