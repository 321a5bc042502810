"""Runs that go wrong say so and lose nothing (issue 33). Here: interrupted and failed scoring - Ctrl-C
in `predict` and `benchmark` is one line and exit 130, no traceback; what was being written never
appears under its final name; `clearest.partial/` never survives; an earlier result stays whole."""

from __future__ import annotations

import pytest

from gmaiqa.cli import main


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
