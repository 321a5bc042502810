"""gmaiqa benchmark over the whole registry, on scored stacks and on stacks with only a clearest flag."""

from __future__ import annotations

import csv

from gmaiqa.cli import main
from gmaiqa.focus import FOCUS_MEASURES


def test_all_classical_ranks_every_measure_with_the_evaluation_metrics(tiny_feces, tmp_path):
    from gmaiqa.wandb_offline import find_runs, read_run

    out = tmp_path / "bench"
    assert (
        main(
            ["benchmark", f"data.root={tiny_feces}", f"out={out}", "methods=all_classical", "accelerator=cpu"]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "benchmark.csv")))
    assert {r["method"] for r in rows} == set(FOCUS_MEASURES) and len(rows) == len(FOCUS_MEASURES)
    accs = [float(r["acc"]) for r in rows]
    assert accs == sorted(accs, reverse=True) and all(int(r["groups"]) == 8 and r["srocc"] for r in rows)
    run = read_run(find_runs(out / "wandb")[0])
    assert any(f.startswith("media/table/benchmark/ranking") for f in run["files"])
    assert any(f.startswith("media/images/benchmark/score_curves") for f in run["files"])
    assert len(list((out / "curves").glob("*.png"))) == 4  # the default: the first four groups


def test_score_curves_for_chosen_groups_and_methods(tiny_feces, tmp_path):
    out = tmp_path / "bench"
    assert (
        main(
            [
                "benchmark",
                f"data.root={tiny_feces}",
                f"out={out}",
                "methods=[TENG,LAPV]",
                "curves=[g0003]",
                "curve_methods=[LAPV]",
                "wandb.mode=disabled",
            ]
        )
        == 0
    )
    assert [p.name for p in (out / "curves").glob("*.png")] == ["g0003.png"]
    assert (
        main(
            [
                "benchmark",
                f"data.root={tiny_feces}",
                f"out={tmp_path / 'b2'}",
                "methods=[TENG]",
                "curves=[nope]",
                "wandb.mode=disabled",
            ]
        )
        == 2
    )


def test_stacks_with_only_a_clearest_flag_leave_srocc_empty(feces_copy, tmp_path):
    manifest = feces_copy / "manifest.csv"
    rows = list(csv.DictReader(open(manifest)))
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["group", "image", "z", "clearest"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "bench"
    assert (
        main(
            [
                "benchmark",
                f"data.root={feces_copy}",
                f"out={out}",
                "methods=[TENG,LAPV,all_classical]",
                "accelerator=cpu",
                "wandb.mode=disabled",
            ]
        )
        == 0
    )
    result = list(csv.DictReader(open(out / "benchmark.csv")))
    assert len(result) == len(FOCUS_MEASURES)  # listed twice, run once
    assert all(r["srocc"] == "" and r["z_error_um"] == "" for r in result) and all(r["acc"] for r in result)
