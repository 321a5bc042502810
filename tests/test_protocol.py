"""The GMANet paper's protocol, checked by what a job *did*: each stage trains every batch of every epoch
from a fresh sampler (§3.4), checkpoints are selected by the paper's rules (§4.3, §5.1.1) with a reported
fallback, the five rounds share one split (§4.1, §4.3), no augmentation (§3.4), the cross-dataset
windows (§4.3), and the score direction of every checkpoint (a defocus regressor: lower = clearer)."""

from __future__ import annotations

import csv
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf, open_dict

from gmaiqa.callbacks.selection import Constraint, SelectCheckpoint, rule_from_config
from gmaiqa.cli import main
from gmaiqa.data.sampling import GroupBatchSampler
from helpers.tiny import compose_train, tiny_data

SMALL = ["model.head_channels=32", "model.aggregation_channels=32", "logger.wandb.enabled=false"]


def _train(cfg):
    from gmaiqa.train import train

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(cfg)


def _steps_per_epoch(stage_dir: Path) -> Counter:
    rows = csv.DictReader(open(stage_dir / "csv" / "metrics.csv"))
    return Counter(int(r["epoch"]) for r in rows if r.get("train/loss_step"))


# ---------------------------------------------------------------------------------------- isolated stages
def test_a_later_stage_trains_every_batch_of_every_epoch_from_a_fresh_sampler(tiny_feces, tmp_path):
    """L0 for one epoch (so its best checkpoint is epoch 0, saved with every batch consumed), then L1 for
    two: L1 must train all its batches in both epochs, in the order of a sampler at epoch 0."""
    cfg = compose_train(
        "gmanet_paper", tiny_data(tiny_feces) + SMALL + [f"paths.run_dir={tmp_path / 'run'}"], one_epoch=False
    )
    with open_dict(cfg):
        cfg.stages[0].max_epochs, cfg.stages[1].max_epochs = 1, 2
        cfg.stages[1].task = {"optimizer": {"lr": 3.0e-6}}  # a stage's own lr (default_model's L1)
        cfg.callbacks = {"probe": {"_target_": "helpers.probes.BatchProbe"}}
    summary = _train(cfg)
    l0, l1 = (Path(s["dir"]) for s in summary["stages"])
    assert Path(summary["stages"][0]["checkpoint"]).name == "best-000.ckpt"
    for stage_dir, lr in ((l0, cfg.task.optimizer.lr), (l1, 3.0e-6)):
        optimizer = torch.load(stage_dir / "checkpoints" / "last.ckpt", weights_only=False)[
            "optimizer_states"
        ]
        assert {group["initial_lr"] for group in optimizer[0]["param_groups"]} == {lr}

    from gmaiqa.data.dataset import load_dataset
    from gmaiqa.data.splits import split_stacks

    train_groups = split_stacks(load_dataset(tiny_feces), (0.6, 0.2, 0.2), cfg.data.split_seed)["train"]
    fresh = GroupBatchSampler(
        [len(s) for s in train_groups], [s.clearest for s in train_groups], 3, seed=cfg.seed
    )
    expected = {}
    for epoch in (0, 1):
        fresh.set_epoch(epoch)
        expected[str(epoch)] = [batch[0].group for batch in fresh]
    assert len(expected["0"]) == len(train_groups) >= 2

    assert _steps_per_epoch(l0) == {0: len(train_groups)}
    assert _steps_per_epoch(l1) == {0: len(train_groups), 1: len(train_groups)}  # logged every step
    assert json.loads((l1 / "batches.json").read_text()) == expected
    assert json.loads((l0 / "batches.json").read_text()) == {"0": expected["0"]}


def test_a_stage_overrides_only_the_task_keys_it_names_and_a_wrong_one_is_named():
    from gmaiqa.config_check import precheck
    from gmaiqa.errors import ConfigError
    from gmaiqa.stages import stage_task

    cfg = compose_train("gmanet_paper", ["logger.wandb.enabled=false"])
    with open_dict(cfg):
        cfg.stages[1].task = {"optimizer": {"lr": 5.0e-6}}
    job, l1 = OmegaConf.to_container(cfg.task, resolve=True), stage_task(cfg, cfg.stages[1])
    assert l1["optimizer"] == {**job["optimizer"], "lr": 5.0e-6} and job["optimizer"]["lr"] == 1.0e-5
    assert {k: v for k, v in l1.items() if k != "optimizer"} == {
        k: v for k, v in job.items() if k != "optimizer"
    }
    assert stage_task(cfg, cfg.stages[0]) == job
    with pytest.raises(ConfigError, match=r"stages\.l1\.task\.optimizer\.learning_rate"):
        precheck("train", ["experiment=gmanet_paper", "+stages.1.task.optimizer.learning_rate=1e-5"])


def test_testing_a_checkpoint_does_not_move_the_training_sampler(tiny_feces, tmp_path):
    from gmaiqa.data.datamodule import FocusStackDataModule

    dm = FocusStackDataModule(
        root=str(tiny_feces),
        resize=(64, 96),
        crop=(32, 48),
        batch_size=3,
        num_workers=0,
        validate="headers",
        block=(8, 8),
    )

    class Trainer:  # what the DataModule asks of Lightning's trainer
        world_size, global_rank = 1, 0

        class state:
            fn = "test"

    dm.trainer = Trainer()
    dm.load_state_dict({"sampler": {"seed": 0, "epoch": 3, "batches_consumed": 2}})
    sampler = dm.train_dataloader().batch_sampler
    assert (sampler.epoch, len(list(sampler))) == (0, len(sampler))
    Trainer.state.fn = "fit"  # a fit that resumes its own last.ckpt continues where it stopped
    dm.load_state_dict({"sampler": {"seed": 0, "epoch": 3, "batches_consumed": 2}})
    sampler = dm.train_dataloader().batch_sampler
    sampler.set_epoch(3)
    assert sampler.epoch == 3 and len(list(sampler)) == len(sampler) - 2


# ---------------------------------------------------------------------------------------- selection rules
def test_the_papers_t0_window_scales_with_the_number_of_validation_groups():
    window = Constraint(metric="val/t0", at_least=120, at_most=129, of_groups=207)
    assert window.bounds(207) == {"at_least": 120, "at_most": 129}  # §4.3 as written
    assert window.bounds(12) == {"at_least": 7, "at_most": 7}  # 6.96 .. 7.48, rounded
    assert window.holds(120, 207) and window.holds(129, 207) and not window.holds(130, 207)
    acc = Constraint(metric="val/acc", above=0.98, below=0.99)  # strict: "higher than 98% and lower than 99%"
    assert not acc.holds(0.98, None) and acc.holds(0.985, None) and not acc.holds(0.99, None)


def test_the_paper_rules_are_the_default_of_every_gmanet_experiment():
    for name in (
        "gmanet_paper",
        "gmanet_paper_l2",
        "gmanet_l0",
        "gmanet_l1",
        "gmanet_l2",
        "gmanet_l1_direct",
        "gmanet_no_aux",
        None,
    ):
        cfg = compose_train(name, ["paths.run_dir=/tmp/unused"])
        for i, stage in enumerate(cfg.stages):
            rule = rule_from_config(stage, f"stages.{i}.selection")
            if stage.model.mask_attention_depth == 0:  # L0: §3.4 + §4.3
                assert rule.monitor == "val/loss_diff" and rule.mode == "min"
                assert {
                    (c.metric, c.above, c.below, c.at_least, c.at_most, c.of_groups) for c in rule.constraints
                } == {("val/acc", 0.98, 0.99, None, None, None), ("val/t0", None, None, 120, 129, 207)}
            else:  # L1, L2, L1*: §3.4, §4.3, §5.1.1
                assert rule.monitor == "val/loss_score"
                assert [(c.metric, c.above, c.below) for c in rule.constraints] == [("val/acc", 0.98, None)]
    lowest = compose_train("gmanet_paper", ["paths.run_dir=/tmp/unused", "selection=lowest_loss"])
    assert all(not rule_from_config(s, "s").constraints for s in lowest.stages)


def test_a_stage_written_with_the_old_monitor_key_still_runs_with_a_message():
    with pytest.warns(FutureWarning, match="stages.0.selection"):
        rule = rule_from_config({"name": "l0", "monitor": "val/loss_diff"}, "stages.0.selection")
    assert (rule.monitor, rule.constraints) == ("val/loss_diff", ())
    from gmaiqa.errors import ConfigError

    with pytest.raises(ConfigError, match="stages.0.selection.constraints.0.abov"):
        rule_from_config(
            {"selection": {"monitor": "val/acc", "constraints": [{"metric": "val/acc", "abov": 1}]}},
            "stages.0.selection",
        )


def _scripted_l0(tiny_feces, run_dir: Path, script: list[dict]):
    cfg = compose_train(
        "gmanet_l0",
        tiny_data(tiny_feces)
        + SMALL
        + [f"paths.run_dir={run_dir}", "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1"],
        one_epoch=False,
    )
    with open_dict(cfg):
        cfg.stages[0].max_epochs = len(script)
        cfg.task._target_ = "helpers.probes.ScriptedValidationTask"
        cfg.task.script = script
    return _train(cfg)


def _epoch(loss: float, acc: float, t0: int) -> dict:
    return {"val/loss_diff": loss, "val/acc": acc, "val/t0": t0, "val/groups": 207}


def test_the_lowest_loss_epoch_outside_the_acc_window_is_not_kept(tiny_feces, tmp_path):
    script = [
        _epoch(3.0, 0.985, 121),
        _epoch(1.0, 1.0, 150),
        _epoch(2.0, 0.985, 125),
        _epoch(2.5, 0.985, 128),
    ]
    summary = _scripted_l0(tiny_feces, tmp_path / "run", script)
    stage = summary["stages"][0]
    assert Path(stage["checkpoint"]).name == "best-002.ckpt" and Path(stage["checkpoint"]).is_file()
    assert sorted(p.name for p in Path(stage["checkpoint"]).parent.glob("best-*")) == ["best-002.ckpt"]
    done = json.loads((Path(stage["dir"]) / "done.json").read_text())["selection"]
    assert (done["status"], done["epoch"], done["epochs_meeting_constraints"]) == ("constrained", 2, 3)
    assert [h["constraints_met"] for h in done["history"]] == [True, False, True, True]
    assert json.loads((Path(stage["dir"]) / "metrics.json").read_text())["selection"]["epoch"] == 2
    assert torch.load(stage["checkpoint"], map_location="cpu", weights_only=False)["epoch"] == 2


def test_when_no_epoch_qualifies_the_nearest_is_kept_and_reported(tiny_feces, tmp_path, capsys):
    """No epoch meets 98 % < acc < 99 % and 120 <= t0 <= 129: the epochs over the ceilings (acc 1.0,
    t0 150 and 160) fall short of no floor, so the lowest loss among them is kept - not the lowest loss
    overall, whose acc collapsed to 0.5 (0.48 short of 0.98)."""
    script = [_epoch(3.0, 1.0, 150), _epoch(1.0, 1.0, 160), _epoch(0.5, 0.5, 125), _epoch(2.5, 1.0, 150)]
    summary = _scripted_l0(tiny_feces, tmp_path / "multirun" / "0", script)
    stage = summary["stages"][0]
    assert Path(stage["checkpoint"]).name == "best-001.ckpt"
    printed = capsys.readouterr().out
    assert "kept epoch 1, the nearest to their lower bounds, then the best val/loss_diff" in printed
    assert "(selection: fallback)" in printed
    done = json.loads((Path(stage["dir"]) / "done.json").read_text())
    assert (done["selection"]["status"], done["selection"]["epoch"]) == ("fallback", 1)
    assert [h["shortfall"] for h in done["selection"]["history"]] == pytest.approx([0, 0, 0.48, 0])

    job_done = json.loads((tmp_path / "multirun" / "0" / "done.json").read_text())
    assert job_done["stages"][0]["selection"]["status"] == "fallback"

    from gmaiqa.summarize import summarize

    result = summarize(tmp_path / "multirun", wandb_mode="disabled")
    assert result["selections"] == {"all jobs l0": "1 fallback (seed 0)"}
    text = (tmp_path / "multirun" / "summary.md").read_text()
    assert "1 fallback (seed 0)" in text and "kept as a fallback" in text


def test_a_fallback_weighs_a_t0_floor_missed_as_a_share_of_the_groups():
    rule = rule_from_config(
        {
            "selection": {
                "monitor": "val/loss",
                "constraints": [
                    {"metric": "val/acc", "above": 0.98},
                    {"metric": "val/t0", "at_least": 120, "of_groups": 207},
                ],
            }
        },
        "s",
    )
    selector = SelectCheckpoint("/tmp/unused", rule)
    verdict = selector.verdict({"val/loss": 1.0, "val/acc": 0.9, "val/t0": 3, "val/groups": 12})
    assert verdict["shortfall"] == pytest.approx(0.08 + (7 - 3) / 12)  # the floor 120 of 207 is 7 of 12


def test_selection_state_survives_a_resume():
    """The selector's choice travels in last.ckpt: a resumed stage keeps comparing against it."""
    rule = rule_from_config(
        {"selection": {"monitor": "val/loss", "constraints": [{"metric": "val/acc", "above": 0.5}]}}, "s"
    )
    first = SelectCheckpoint("/tmp/unused", rule)
    first.selected = {
        "epoch": 4,
        "step": 40,
        "value": 0.3,
        "status": "constrained",
        "path": "/tmp/unused/best-004.ckpt",
    }
    first.history = [{"epoch": 4, "step": 40, "values": {}, "constraints_met": True}]
    resumed = SelectCheckpoint("/tmp/unused", rule)
    resumed.load_state_dict(first.state_dict())
    assert resumed.outcome()["epoch"] == 4
    met, missed = {"constraints_met": True, "shortfall": 0.0}, {"constraints_met": False, "shortfall": 0.1}
    assert not resumed._takes(0.2, missed) and resumed._takes(0.2, met) and not resumed._takes(0.4, met)


def test_a_fallback_saved_before_shortfalls_were_recorded_is_compared_by_its_values():
    rule = rule_from_config(
        {"selection": {"monitor": "val/loss", "constraints": [{"metric": "val/acc", "above": 0.9}]}}, "s"
    )
    resumed = SelectCheckpoint("/tmp/unused", rule)
    resumed.load_state_dict(
        {
            "selected": {"epoch": 1, "step": 10, "value": 0.5, "path": "x", "status": "fallback"},
            "history": [
                {
                    "epoch": 1,
                    "step": 10,
                    "values": {"val/loss": 0.5, "val/acc": 0.8},
                    "constraints_met": False,
                }
            ],
        }
    )
    nearer = resumed.verdict({"val/loss": 0.9, "val/acc": 0.85})
    farther = resumed.verdict({"val/loss": 0.1, "val/acc": 0.6})
    assert nearer["shortfall"] == pytest.approx(0.05) and farther["shortfall"] == pytest.approx(0.3)
    assert resumed._takes(0.9, nearer) and not resumed._takes(0.1, farther)
    assert resumed.verdict({"val/loss": 0.1})["shortfall"] is None  # acc never logged: never nearer


# ------------------------------------------------------------------------------- one split, five rounds
def _test_groups(overrides: list[str], root: Path) -> list[str]:
    cfg = compose_train(
        "gmanet_paper", tiny_data(root) + ["sweep=seeds", "paths.run_dir=/tmp/unused", *overrides]
    )
    dm = OmegaConf.to_container(cfg.data, resolve=True)
    from hydra.utils import instantiate

    module = instantiate(dm)
    module.setup("test")
    return [s.group for s in module.splits["test"]]


def test_the_five_rounds_of_sweep_seeds_share_one_split_unless_asked(feces_12):
    from test_sweeps import sweep_jobs

    jobs = sweep_jobs("seeds")
    assert len(jobs) == 5
    shared = [_test_groups(job, feces_12) for job in jobs]
    assert all(groups == shared[0] for groups in shared)
    per_round = [_test_groups([*job, "data.split_seed=${seed}"], feces_12) for job in jobs]
    assert len({tuple(g) for g in per_round}) > 1 and per_round[0] == shared[0]  # split_seed 0 = seed 0's


def test_summarize_says_whether_the_rounds_shared_a_split(tmp_path):
    from gmaiqa.summarize import find_jobs, split_statement

    for i, split_seed in enumerate((0, 0)):
        (tmp_path / "a" / str(i)).mkdir(parents=True)
        (tmp_path / "a" / str(i) / "job.json").write_text("{}")
        (tmp_path / "a" / str(i) / "config.yaml").write_text(f"data:\n  split_seed: {split_seed}\n")
    assert "one train/val/test split for every round" in split_statement(find_jobs(tmp_path / "a"))
    for i in range(2):
        (tmp_path / "b" / str(i)).mkdir(parents=True)
        (tmp_path / "b" / str(i) / "job.json").write_text("{}")
        (tmp_path / "b" / str(i) / "config.yaml").write_text(f"data:\n  split_seed: {i}\n")
    assert "each round drew its own" in split_statement(find_jobs(tmp_path / "b"))


# ------------------------------------------------------------------------------- the paper's other settings
def test_no_augmentation_and_the_cross_dataset_windows_of_the_paper():
    cfg = compose_train(None, ["paths.run_dir=/tmp/unused", "eval_datasets=paper"])
    assert cfg.data.flips is False and cfg.data.rot90 is False  # §3.4 trains without augmentation
    assert list(cfg.eval_datasets.leucorrhea.resize) == [768, 1152] and list(
        cfg.eval_datasets.leucorrhea.block
    ) == [8, 8]
    assert list(cfg.eval_datasets.leucorrhea.inference.step) == [384, 384]
    assert list(cfg.eval_datasets.blood.resize) == [1024, 1536] and list(cfg.eval_datasets.blood.block) == [
        32,
        32,
    ]
    assert list(cfg.eval_datasets.blood.inference.step) == [256, 256]


# ---------------------------------------------------------------------------------------- score direction
@pytest.fixture(scope="module")
def blur_series(tmp_path_factory) -> Path:
    """Three groups of one textured image blurred progressively away from a known sharpest slice."""
    import cv2

    root = tmp_path_factory.mktemp("blur")
    rng = np.random.default_rng(0)
    rows = ["group,image,z,clearest"]
    for g, sharpest in enumerate((1, 3, 4)):
        base = (rng.random((64, 96)) * 255).astype(np.float32)
        (root / f"g{g}").mkdir()
        for z in range(6):
            sigma = 0.4 + 1.2 * abs(z - sharpest)
            image = cv2.GaussianBlur(base, (0, 0), sigma).clip(0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f"g{g}" / f"{z}.png"), image)
            rows.append(f"g{g},g{g}/{z}.png,{z},{int(z == sharpest)}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def _oracle_checkpoint(path: Path, with_direction: bool = True) -> Path:
    """A checkpoint laid out as `gmaiqa train` writes a defocus regressor's (task, tile geometry,
    recorded direction), around a network whose defocus is known."""
    meta = {
        "model": {"_target_": "helpers.probes.SharpnessOracle"},
        "data": {"levels": {"patch": 32}, "input_size": 32},
        "inference": {},
        "task": "gmaiqa.tasks.DefocusTask",
        "stage": "regressor",
    }
    if with_direction:
        meta.update(higher_is_better=False, scoring="defocus_tiles")
    torch.save({"state_dict": {"net.scale": torch.tensor(1.0)}, "gmaiqa": meta}, path)
    return path


@pytest.mark.parametrize("with_direction", [True, False])
def test_eval_predict_and_benchmark_pick_the_least_defocused_image(blur_series, tmp_path, with_direction):
    ckpt = _oracle_checkpoint(tmp_path / "regressor.ckpt", with_direction)
    context = (
        warnings.catch_warnings() if with_direction else pytest.warns(UserWarning, match="score direction")
    )
    with context:
        assert (
            main(
                [
                    "eval",
                    f"ckpt={ckpt}",
                    f"data.root={blur_series}",
                    f"out={tmp_path / 'eval'}",
                    "accelerator=cpu",
                    "num_workers=0",
                ]
            )
            == 0
        )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (metrics["t0"], metrics["groups"], metrics["acc"]) == (3, 3, 1.0)
    per_group = list(csv.DictReader(open(tmp_path / "eval" / "per_group.csv")))
    for row in per_group:  # the raw defocus is what is written; the lowest is the clearest
        defocus = [float(v) for v in row["predicted_scores"].split()]
        assert int(row["predicted_clearest"]) == int(np.argmin(defocus)) == int(row["annotated_clearest"])

    assert (
        main(
            [
                "predict",
                f"ckpt={ckpt}",
                f"input={blur_series}",
                f"out={tmp_path / 'pred'}",
                "accelerator=cpu",
                "num_workers=0",
            ]
        )
        == 0
    )
    best = {r["group"]: r["image"] for r in csv.DictReader(open(tmp_path / "pred" / "clearest.csv"))}
    assert best == {"g0": "g0/1.png", "g1": "g1/3.png", "g2": "g2/4.png"}

    assert (
        main(
            [
                "benchmark",
                f"data.root={blur_series}",
                f"out={tmp_path / 'bench'}",
                "accelerator=cpu",
                "num_workers=0",
                f"methods=[ckpt:{ckpt}]",
                "wandb.mode=disabled",
                "curves=0",
            ]
        )
        == 0
    )
    row = next(csv.DictReader(open(tmp_path / "bench" / "benchmark.csv")))
    assert float(row["acc"]) == 1.0 and int(row["t0"]) == 3


def test_the_old_data_seed_key_of_eval_still_chooses_the_split_with_a_message():
    from gmaiqa.scoring import split_seed_of

    old = OmegaConf.create({"seed": 3, "split_seed": None})
    with pytest.warns(FutureWarning, match="data.split_seed"):
        assert split_seed_of(old, 0) == 3
    assert split_seed_of(OmegaConf.create({"seed": None, "split_seed": None}), 5) == 5
