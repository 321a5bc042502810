"""Runs that go wrong say so and lose nothing (issue 33), each fault reproduced on a tiny run:

* a non-finite loss stops the stage (message naming stage, epoch and step; failed.json; exit 1; no later
  stage; nothing non-finite saved), and a NaN validation metric is called NaN by the selection;
* SIGTERM and SIGUSR1 are pre-emption, not success: last.ckpt saved, interrupted.json, one line on how to
  resume, exit 128 + signal; a stopped sweep names the jobs left and its relaunch runs only those;
* an unreadable last.ckpt: named, then the newest readable resume point (the weights still end equal to
  an uninterrupted run's); stale *.tmp removed;
* a full disk: one message naming the file and the space needed, failed.json, no temporary file, the
  earlier checkpoints intact;
* one writer per run folder: a second launch is refused naming the holder; a dead holder's lock is taken
  over;
* Ctrl-C in `predict` and `benchmark`: one line and exit 130, nothing under a final name half-written.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch

from gmaiqa.cli import main
from helpers.launch import finish, job_overrides, kill_when, launch, two_seed_sweep, weights
from helpers.tiny import SMALL_GMANET, tiny_data


def interrupt_after(calls: int, exception: BaseException):
    """A stand-in that lets ``calls`` calls through to ``real`` and then raises ``exception``."""

    def wrap(real):
        count = {"n": 0}

        def stand_in(*args, **kwargs):
            count["n"] += 1
            if count["n"] > calls:
                raise exception
            return real(*args, **kwargs)

        return stand_in

    return wrap


def test_ctrl_c_in_predict_exits_130_and_keeps_the_earlier_result_whole(
    tiny_feces, tmp_path, capsys, monkeypatch
):
    import gmaiqa.predict as predict

    out = tmp_path / "out"
    args = ["predict", f"input={tiny_feces}", f"out={out}", "method=TENG", "num_workers=0"]
    assert main(args) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    monkeypatch.setattr(
        predict.PredictOutputs, "add", interrupt_after(3, KeyboardInterrupt())(predict.PredictOutputs.add)
    )
    with pytest.raises(SystemExit) as stopped:
        main([*args, "overwrite=true"])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert "gmaiqa predict: interrupted" in err and "Traceback" not in err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before  # the earlier tables and clearest images, untouched
    assert not list(out.glob("*.partial"))


def test_a_failed_predict_leaves_no_partial_folder(tiny_feces, tmp_path, monkeypatch):
    import gmaiqa.predict as predict

    out = tmp_path / "out"
    monkeypatch.setattr(
        predict.PredictOutputs,
        "add",
        interrupt_after(2, RuntimeError("disk went away"))(predict.PredictOutputs.add),
    )
    with pytest.raises(SystemExit) as failed:  # Hydra reports a run-time error and exits 1
        main(["predict", f"input={tiny_feces}", f"out={out}", "method=TENG", "num_workers=0"])
    assert failed.value.code != 0
    assert not (out / "clearest.partial").exists() and not (out / "predictions.csv").exists()


def test_ctrl_c_in_benchmark_leaves_no_complete_looking_table(tiny_feces, tmp_path, capsys, monkeypatch):
    import gmaiqa.benchmark as benchmark

    out = tmp_path / "bench"
    real = benchmark.write_curves

    def two_figures_then_ctrl_c(folder, *args, **kwargs):
        real(folder, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "write_curves", two_figures_then_ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "benchmark",
                f"data.root={tiny_feces}",
                f"out={out}",
                "methods=[TENG]",
                "curves=2",
                "logger.wandb.mode=disabled",
            ]
        )
    assert stopped.value.code == 130 and "Traceback" not in capsys.readouterr().err
    assert not (out / "benchmark.csv").exists()
    assert not (out / "curves").exists() and not (out / "curves.partial").exists()


def tiny_two_stages(root: Path, run_dir: Path, *extra: str) -> list[str]:
    """GMANet's L0 -> L1 on ``root``: two tiny batches per epoch, last.ckpt every step."""
    return [
        "train",
        *tiny_data(root),
        *SMALL_GMANET,
        "logger=none",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "stages.0.max_epochs=2",
        "stages.1.max_epochs=1",
        "checkpoint.every_n_train_steps=1",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def all_finite(path: Path) -> bool:
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_a_nan_loss_stops_the_stage_and_no_later_stage_starts(tiny_feces, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(tiny_two_stages(tiny_feces, run, "task.optimizer.lr=1e12"))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "gmaiqa train: failed: stage l0: the training loss became NaN at epoch 0, step" in err
    assert "task.optimizer.lr" in err and "Traceback" not in err
    failed = json.loads((run / "failed.json").read_text())
    assert failed["stage"] == "l0" and failed["cause"] == "training loss NaN" and failed["step"] >= 1
    assert not (run / "l1").exists() and not (run / "done.json").exists()
    saved = list((run / "l0" / "checkpoints").glob("*.ckpt"))
    assert saved and all(all_finite(p) for p in saved)  # what a relaunch or init_from would read


def test_a_non_finite_checkpoint_is_refused_by_init_from(tiny_feces, tmp_path, capsys):
    from gmaiqa.checkpoints import init_weights_from
    from gmaiqa.errors import ConfigError

    run = tmp_path / "run"
    main(tiny_two_stages(tiny_feces, run, "task.optimizer.lr=1e12"))
    (last,) = (run / "l0" / "checkpoints").glob("last.ckpt")
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name].view(-1)[0] = float("nan")
    torch.save(ckpt, tmp_path / "poisoned.ckpt")
    from gmaiqa.checkpoints import load_net

    net, _ = load_net(last)
    with pytest.raises(ConfigError, match="non-finite weights"):
        init_weights_from(net, tmp_path / "poisoned.ckpt")


def test_the_selection_names_a_nan_metric_as_nan(capsys):
    from types import SimpleNamespace

    from gmaiqa.callbacks.selection import SelectCheckpoint, SelectionRule
    from gmaiqa.stages import report_selection

    selector = SelectCheckpoint(Path("unused"), SelectionRule("val/loss_diff"))
    for epoch in range(2):
        trainer = SimpleNamespace(
            sanity_checking=False,
            current_epoch=epoch,
            global_step=2 * epoch,
            callback_metrics={"val/loss_diff": torch.tensor(float("nan"))},
        )
        selector.on_validation_end(trainer, None)
    outcome = selector.outcome()
    assert outcome["status"] == "none" and outcome["epochs_not_finite"] == 2
    assert outcome["epochs_validated"] == 2
    json.dumps(selector.history, allow_nan=False)  # done.json stays valid JSON
    report_selection("l0", outcome)
    out = capsys.readouterr().out
    assert "val/loss_diff was NaN or infinite in every epoch validated (2)" in out
    assert "never logged" not in out


def test_sigterm_is_preemption_and_a_damaged_last_ckpt_resumes_from_the_one_before(feces_12, tmp_path):
    reference, resumed, marker = tmp_path / "reference", tmp_path / "resumed", tmp_path / "stalled"
    base = [*job_overrides(feces_12), "logger=none"]
    finish(launch([*base, f"hydra.run.dir={reference}"]))

    args = [*base, f"hydra.run.dir={resumed}"]
    # signalled at step 4 of the first epoch: the batch in hand finishes (step 5), then the stage stops
    proc = launch(args, stall_at=4, marker=marker)
    kill_when(proc, marker, signum=signal.SIGTERM)
    out = proc.stdout.read()
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "gmaiqa train: stopped by SIGTERM (stage l0, epoch 0, step 5)" in out, out[-3000:]
    assert "relaunch the same command to resume" in out and "Traceback" not in out
    stopped = json.loads((resumed / "interrupted.json").read_text())
    assert stopped["signal"] == "SIGTERM" and stopped["stage"] == "l0" and stopped["step"] == 5
    checkpoints = resumed / "l0" / "checkpoints"
    last, previous = checkpoints / "last.ckpt", checkpoints / "previous.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5
    assert torch.load(previous, map_location="cpu", weights_only=True)["global_step"] == 4
    assert not (resumed / "done.json").exists()

    # the newest resume point is damaged (a copy cut short), and a crash left a temporary file
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    (checkpoints / "last.ckpt.tmp").write_bytes(b"half a checkpoint")
    out = finish(launch(args))
    assert f"{last} cannot be read" in out and f"resuming from {previous} instead" in out
    assert "removed last.ckpt.tmp" in out and not list(checkpoints.glob("*.tmp"))
    assert (checkpoints / "last.ckpt.unreadable").is_file()
    assert not (resumed / "interrupted.json").exists() and (resumed / "done.json").is_file()
    final_ref, final_res = weights(reference / "l0/checkpoints/last.ckpt"), weights(last)
    assert final_ref.keys() == final_res.keys()
    for key in final_ref:
        torch.testing.assert_close(final_res[key], final_ref[key], rtol=1e-4, atol=1e-6, msg=key)


def test_sigusr1_stops_a_sweep_names_the_jobs_left_and_the_relaunch_runs_only_them(feces_12, tmp_path):
    marker = tmp_path / "stalled"
    args = two_seed_sweep(feces_12, tmp_path)
    proc = launch(args, stall_at=1, marker=marker, seed=0)
    kill_when(proc, marker, signum=signal.SIGUSR1)
    out = proc.stdout.read()
    assert proc.returncode == 128 + signal.SIGUSR1, out[-3000:]
    assert "stopped by SIGUSR1" in out and "Traceback" not in out
    assert "jobs 0 to 1 of 0..1 did not finish" in out and "run_id=sweep" in out
    sweep = tmp_path / "gmanet_l0-multirun" / "sweep"
    assert json.loads((sweep / "0" / "interrupted.json").read_text())["signal"] == "SIGUSR1"
    assert not (sweep / "1").exists()  # the sweep stopped: job 1 never started

    out = finish(launch(args))
    assert "resuming from" in out
    assert all((sweep / job / "done.json").is_file() for job in ("0", "1"))


def test_a_full_disk_while_writing_a_checkpoint_is_one_message_and_leaves_the_earlier_ones(
    tiny_feces, tmp_path, capsys, monkeypatch
):
    import lightning.pytorch as pl

    from gmaiqa.callbacks.checkpointing import readable

    run = tmp_path / "run"
    real = pl.Trainer.save_checkpoint
    calls = {"n": 0}

    def disk_fills_up(self, filepath, weights_only=False, storage_options=None):
        calls["n"] += 1
        if calls["n"] <= 3:
            return real(self, filepath, weights_only)
        Path(filepath).write_bytes(b"\0" * 1000)  # part of the file made it to disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", disk_fills_up)
    code = main(tiny_two_stages(tiny_feces, run))
    err = capsys.readouterr().err
    assert code == 1, err
    assert "gmaiqa train: failed: cannot write" in err and "No space left on device" in err
    assert "it needs about" in err and "are free there" in err and "Traceback" not in err
    failed = json.loads((run / "failed.json").read_text())
    assert failed["errno"] == errno.ENOSPC and failed["needed_bytes"] > 1_000_000
    checkpoints = run / "l0" / "checkpoints"
    assert not list(checkpoints.glob("*.tmp"))
    kept = list(checkpoints.glob("*.ckpt"))
    assert kept and all(readable(p) is None for p in kept)
    assert not (run / "l1").exists()


def test_a_second_launch_of_a_running_job_is_refused_naming_the_holder(tiny_feces, tmp_path, capsys):
    from gmaiqa.runs import holding

    run = tmp_path / "run"
    with holding(run):
        code = main(tiny_two_stages(tiny_feces, run))
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1, err
    assert f"{run} is being written by another launch of this job (PID {os.getpid()} on" in err
    assert sorted(p.name for p in run.iterdir()) == [".gmaiqa.lock"]  # the holder's folder, untouched


def test_a_lock_left_by_a_launch_that_is_gone_is_taken_over(tiny_feces, tmp_path, capsys):
    from helpers.tiny import one_step

    run = tmp_path / "run"
    run.mkdir()
    gone = {"pid": 999999, "host": "node7", "started": "2026-12-01T10:00:00"}
    (run / ".gmaiqa.lock").write_text(json.dumps(gone))  # a killed launch's record, its flock long released
    args = ["train", "experiment=gmanet_l1_direct", *one_step(tiny_feces), *SMALL_GMANET]
    assert main([*args, f"hydra.run.dir={run}"]) == 0
    out = capsys.readouterr().out
    assert "took over the lock of an earlier launch that is gone (PID 999999 on node7" in out
    assert (run / "done.json").is_file() and (run / ".gmaiqa.lock").read_text() == ""


def test_under_slurm_sigusr1_is_left_to_lightnings_requeue_and_its_checkpoint_is_a_resume_point(
    tmp_path, monkeypatch
):
    from gmaiqa.callbacks.checkpointing import resume_point
    from gmaiqa.callbacks.faults import SignalWatch

    for key, value in {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "77"}.items():
        monkeypatch.setenv(key, value)
    before = signal.getsignal(signal.SIGUSR1)
    watch = SignalWatch()
    with watch.installed():
        assert signal.getsignal(signal.SIGUSR1) == before  # Lightning registers its requeue handler
        assert signal.getsignal(signal.SIGTERM) == watch.handle
    monkeypatch.delenv("SLURM_NTASKS")
    with watch.installed():
        assert signal.getsignal(signal.SIGUSR1) == watch.handle

    stage = tmp_path / "l0"
    (stage / "checkpoints").mkdir(parents=True)
    torch.save({"global_step": 3}, stage / "checkpoints" / "last.ckpt")
    torch.save({"global_step": 4}, stage / "hpc_ckpt_1.ckpt")
    os.utime(stage / "checkpoints" / "last.ckpt", (1, 1))  # the requeue handler wrote after it
    assert resume_point(stage) == (stage / "hpc_ckpt_1.ckpt", [])
    (stage / "hpc_ckpt_1.ckpt").write_bytes(b"cut short")
    path, notes = resume_point(stage)
    assert path == stage / "checkpoints" / "last.ckpt" and "hpc_ckpt_1.ckpt cannot be read" in notes[0]
    (stage / "checkpoints" / "last.ckpt").write_bytes(b"also cut short")
    assert resume_point(stage)[0] is None  # no readable resume point: the stage starts again


def test_ctrl_c_in_eval_exits_130_and_writes_no_table(tiny_feces, trained_run, tmp_path, capsys, monkeypatch):
    import gmaiqa.evaluate as evaluate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate, "test_checkpoint", interrupted)
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as stopped:
        main(["eval", f"ckpt={trained_run}", f"data.root={tiny_feces}", f"out={out}", "split=all"])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert "gmaiqa eval: interrupted" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
