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


def test_per_group_offsets_agree_with_the_figures_they_make(tiny_feces, trained_run):
    """The offsets a paired comparison reads (``--compare`` of benchmarks/default_scorer.py) are the
    picks the figures count: one per group in scoring order, t0 of them 0 and acc's share at most 1,
    for a measure and for a checkpoint alike (under the checkpoint's ``ckpt:PATH`` name)."""
    import torch
    from omegaconf import OmegaConf

    from gmaiqa.benchmark import run_checkpoint, run_classical
    from gmaiqa.scoring import labelled_stacks

    stacks = labelled_stacks(tiny_feces, "headers", "all", (0.6, 0.2, 0.2), 0)
    offsets: dict[str, list[int]] = {}
    rows = run_classical(stacks, ["TENG", "LAPV"], torch.device("cpu"), offsets=offsets)
    options = OmegaConf.create({"resize": None, "block": None, "inference": {}, "num_workers": 0})
    rows.append(run_checkpoint(stacks, str(trained_run), torch.device("cpu"), options, offsets=offsets))
    assert set(offsets) == {r["method"] for r in rows}
    for row in rows:
        picks = offsets[row["method"]]
        assert len(picks) == row["groups"] == len(stacks) and all(p >= 0 for p in picks)
        assert sum(p == 0 for p in picks) == row["t0"] and sum(p == 1 for p in picks) == row["t1"]
        assert sum(p <= 1 for p in picks) / len(picks) == row["acc"]
    # known picks: the group's scores point at one image, its offset is the distance to the clearest
    from gmaiqa.benchmark import pick_offsets
    from gmaiqa.scoring import GroupMetrics

    metrics = GroupMetrics()
    for stack in stacks[:3]:
        scores = torch.zeros(len(stack))
        scores[0] = 1.0  # always the first image
        metrics.update(stack, scores)
    assert pick_offsets(metrics) == [s.clearest for s in stacks[:3]]
