"""Long runs survive interruption: a 2-process DDP job (gloo, CPU) killed with SIGKILL mid-epoch and
relaunched with resume=auto ends with the same weights and metrics as an uninterrupted run, and so does
a job averaging its weights; a killed multirun relaunched skips its finished jobs and resumes the
unfinished one."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import torch

from helpers.launch import finish, finish_code, job_overrides, kill_when, launch, two_seed_sweep, weights
from helpers.tiny import LIGHT_GMANET, tiny_data


def test_ddp_job_killed_mid_epoch_resumes_to_the_same_weights_and_metrics(feces_12, tmp_path):
    from gmaiqa.wandb_offline import find_runs, read_run

    ddp = ["trainer=ddp", "trainer.devices=2"]
    reference, resumed, marker = tmp_path / "reference", tmp_path / "resumed", tmp_path / "stalled"
    base = job_overrides(feces_12) + ddp
    finish(launch(base + [f"hydra.run.dir={reference}", "logger=none"]))

    args = base + [f"hydra.run.dir={resumed}"]
    proc = launch(args, stall_at=4, marker=marker)  # 3 steps per epoch: killed after batch 1 of epoch 2
    kill_when(proc, marker)
    last = resumed / "l0" / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert not (resumed / "done.json").exists() and not list(last.parent.glob("*.tmp"))
    out = finish(launch(args))
    assert "resuming from" in out
    # the DataModule restores the sampler, so Lightning's "dataloader is not resumable" would mislead
    assert "not resumable" not in out

    final_ref, final_res = weights(reference / "l0/checkpoints/last.ckpt"), weights(last)
    assert final_ref.keys() == final_res.keys()
    for key in final_ref:
        torch.testing.assert_close(final_res[key], final_ref[key], rtol=1e-4, atol=1e-6, msg=key)
    ref_metrics = json.loads((reference / "metrics.json").read_text())
    res_metrics = json.loads((resumed / "metrics.json").read_text())
    for key in ("acc", "t0", "t1", "groups", "srocc", "loss_score"):
        assert res_metrics[key] == pytest.approx(ref_metrics[key], rel=1e-4, abs=1e-6), key
    # metrics are over all test groups, not one rank's share
    per_group = (resumed / "per_group.csv").read_text().strip().splitlines()[1:]
    assert len(per_group) == res_metrics["groups"] == ref_metrics["groups"]
    # the resumed attempt logs into the same W&B run (same id), beside the first attempt's files
    runs = find_runs(resumed / "l0")
    assert len(runs) == 2 and len({read_run(r)["id"] for r in runs}) == 1
    assert (resumed / "l0" / "csv" / "metrics.csv").is_file() and (
        resumed / "l0" / "csv" / "resumed-0" / "metrics.csv"
    ).is_file()


def test_a_job_averaging_its_weights_killed_mid_epoch_resumes_to_the_same_average(feces_12, tmp_path):
    """Under weight averaging last.ckpt holds the average as its weights and the raw weights beside it
    (Lightning's current_model_state): a relaunch continues both, and the warm-up where it stopped,
    so the job ends with the same average, raw weights and selected checkpoint as one never killed."""
    ema = "{_target_: gmaiqa.callbacks.weight_averaging.EMAWeightAveraging, decay: 0.9}"
    base = job_overrides(feces_12) + [f"+callbacks.weight_average={ema}", "logger=none", "evaluate=false"]
    reference, resumed, marker = tmp_path / "reference", tmp_path / "resumed", tmp_path / "stalled"
    finish(launch(base + [f"hydra.run.dir={reference}"]))
    args = base + [f"hydra.run.dir={resumed}"]
    proc = launch(args, stall_at=4, marker=marker)  # mid-epoch: 7 steps an epoch on one process
    kill_when(proc, marker)
    assert "resuming from" in finish(launch(args))

    def load(run, name):
        return torch.load(run / "l0" / "checkpoints" / name, map_location="cpu", weights_only=False)

    ref, res = load(reference, "last.ckpt"), load(resumed, "last.ckpt")
    for part in ("state_dict", "current_model_state"):
        assert ref[part].keys() == res[part].keys()
        for key in ref[part]:
            torch.testing.assert_close(res[part][key], ref[part][key], rtol=1e-4, atol=1e-6, msg=key)
    updates = [int(run["averaging_state"]["n_averaged"]) for run in (ref, res)]
    assert updates == [ref["global_step"]] * 2  # one update per step, none lost or repeated by the kill
    [ref_best], [res_best] = (
        sorted((run / "l0" / "checkpoints").glob("best-*.ckpt")) for run in (reference, resumed)
    )
    assert ref_best.name == res_best.name
    for key, value in weights(ref_best).items():
        torch.testing.assert_close(weights(res_best)[key], value, rtol=1e-4, atol=1e-6, msg=key)


def test_killed_multirun_relaunch_skips_finished_jobs_and_resumes_the_rest(feces_12, tmp_path):
    marker = tmp_path / "stalled"
    args = two_seed_sweep(feces_12, tmp_path)
    # seed 0 runs its 4 steps and finishes; seed 1 stalls after 3
    proc = launch(args, stall_at=3, marker=marker, seed=1)
    kill_when(proc, marker)
    sweep = tmp_path / "gmanet_l0-multirun" / "sweep"
    first, second = sweep / "0", sweep / "1"
    assert (first / "done.json").is_file() and not (second / "done.json").exists()
    finished_before = (first / "done.json").read_text()

    out = finish(launch(args))
    assert f"{first}: finished earlier, skipped" in out and "resuming from" in out
    assert (first / "done.json").read_text() == finished_before
    assert json.loads((second / "done.json").read_text())["seed"] == 1
    # a different job cannot take over a directory by accident
    bad = finish_code(launch([*args[:1], "seed=0", *args[2:], "model.head_channels=16"]))
    assert bad[0] != 0 and "holds a different job" in bad[1]


def test_ddp_ranks_find_an_experiment_of_the_users_own_config_dir(feces_12, tmp_path):
    """`--config-dir DIR` adds DIR's config groups to gmaiqa's; Hydra keeps it among the run's config
    sources, not its overrides, so ranks started with only the job's overrides could not compose an
    experiment that lives in DIR (rank 1 failed, rank 0 waited for it). Each rank gets the folder too."""
    mine = tmp_path / "mine" / "experiment"
    mine.mkdir(parents=True)
    (mine / "my_l0.yaml").write_text(
        "# @package _global_\ndefaults:\n  - gmanet_l0\n  - _self_\nrun_name: my_l0\n"
    )
    run = tmp_path / "run"
    args = [
        "--config-dir",
        str(tmp_path / "mine"),
        "experiment=my_l0",
        *tiny_data(feces_12),
        *LIGHT_GMANET,
        "stages.0.max_epochs=1",
        "+trainer.limit_val_batches=1",
        "trainer=ddp",
        "trainer.devices=2",
        "logger=none",
        f"hydra.run.dir={run}",
    ]
    proc = launch(args)
    try:
        finish(proc, timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the DDP job never finished: a rank could not compose the user's experiment")
    assert (run / "done.json").is_file() and "run_name: my_l0" in (run / "config.yaml").read_text()
    # both ranks trained: the test groups were scored across them, every group once
    per_group = (run / "per_group.csv").read_text().strip().splitlines()[1:]
    assert len(per_group) == json.loads((run / "metrics.json").read_text())["groups"] == 3


def test_a_job_requeued_on_another_machine_under_precision_auto_resumes_as_the_rule_says(feces_12, tmp_path):
    """A job killed mid-epoch whose checkpoint says it was trained in the precision that ``auto`` does NOT
    choose on this machine (as if it started on one with the other answer) is relaunched: the stage reads
    the recorded precision, continues as gmaiqa.trainer_settings's rule says (fp32 stays fp32 where bf16 is
    native; bf16 becomes fp32 where it is not), says so, and records what it continued in."""
    from gmaiqa.trainer_settings import native_bf16

    native = native_bf16("cpu")
    here, elsewhere = ("bf16-mixed", "32-true") if native else ("32-true", "bf16-mixed")
    args = job_overrides(feces_12) + ["logger=none", "evaluate=false", "trainer.precision=auto"]
    args += [f"hydra.run.dir={tmp_path / 'run'}"]
    marker = tmp_path / "stalled"
    proc = launch(args, stall_at=3, marker=marker)
    kill_when(proc, marker)
    last = tmp_path / "run" / "l0" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["gmaiqa"]["trainer_precision"] == here
    ckpt["gmaiqa"]["trainer_precision"] = elsewhere
    torch.save(ckpt, last)
    out = finish(launch(args))
    assert f"resuming from {last}" in out
    line = next(row for row in out.splitlines() if "trainer.precision=auto" in row)
    finished = torch.load(last, map_location="cpu", weights_only=False)
    assert finished["global_step"] > 3
    # either way the stage continues in fp32: kept where this CPU would choose bf16, chosen where the
    # bf16 it started in would be emulated
    assert finished["gmaiqa"]["trainer_precision"] == "32-true"
    if native:
        assert "auto: 32-true, as the stage started (the cpu runs bf16 natively" in line
    else:
        assert line.startswith("stage l0: WARNING trainer.precision=auto: 32-true; the stage started in bf16")


@pytest.mark.parametrize(
    "module_path, silenced",
    [
        ("gmaiqa.data.datamodule:FocusStackDataModule", True),
        ("gmaiqa.data.mos_datamodule:MOSDataModule", False),
        ("gmaiqa.data.defocus_levels:DefocusLevelDataModule", False),
    ],
)
def test_lightning_resume_warning_is_silenced_only_where_the_datamodule_restores_its_sampler(
    module_path, silenced
):
    """Lightning's 'dataloader is not resumable' is false for GMANet's DataModule (the DDP test above
    resumes to the uninterrupted run's weights and checks the line is gone) and true for the SAQM and
    defocus-level DataModules, which reshuffle on resume: there it must still reach the user."""
    import importlib
    import warnings

    from lightning.pytorch.utilities.warnings import PossibleUserWarning

    from gmaiqa.stages import resume_warning_only_where_true

    module_name, class_name = module_path.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    lightning_line = (
        "You're resuming from a checkpoint that ended before the epoch ended and your dataloader is"
        " not resumable. This can cause unreliable results if further training is done."
    )
    other = "another warning, after the fit"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with resume_warning_only_where_true(cls.__new__(cls)):
            warnings.warn(lightning_line, PossibleUserWarning, stacklevel=1)
        warnings.warn(lightning_line, PossibleUserWarning, stacklevel=1)  # the silence ends with the fit
        warnings.warn(other, UserWarning, stacklevel=1)
    expected = [lightning_line, other] if silenced else [lightning_line, lightning_line, other]
    assert [str(w.message) for w in caught] == expected
