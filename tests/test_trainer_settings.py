"""trainer.precision=auto and the bf16 warning (gmaiqa.trainer_settings): what each setting becomes on a
device with and without native bf16. The device's capability is stubbed where a case needs the other
answer than this machine's; the probe itself is checked against torch's."""

from __future__ import annotations

import pytest
import torch

from gmaiqa import trainer_settings
from gmaiqa.errors import ConfigError
from gmaiqa.trainer_settings import check_trainer, native_bf16, resolve_precision, training_device_type


@pytest.fixture
def bf16_hardware(monkeypatch):
    """Set what native_bf16 answers for every device kind (and count its calls)."""
    calls = []

    def stub(answer: bool):
        def probe(device_type):
            calls.append(device_type)
            return answer

        monkeypatch.setattr(trainer_settings, "native_bf16", probe)
        return calls

    return stub


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_is_bf16_mixed_exactly_where_the_device_runs_bf16_natively(bf16_hardware, native, expected):
    calls = bf16_hardware(native)
    precision, note = resolve_precision({"precision": "auto", "accelerator": "cpu"})
    assert precision == expected and calls == ["cpu"]
    assert note.startswith(f"trainer.precision=auto: {expected} (the cpu ")
    assert ("has no native bf16" in note) is (not native)


def test_a_chosen_bf16_mixed_is_kept_and_warned_about_only_where_it_is_emulated(bf16_hardware):
    bf16_hardware(False)
    precision, note = resolve_precision({"precision": "bf16-mixed", "accelerator": "cpu"}, key="stages")
    assert precision == "bf16-mixed"
    assert note.startswith("WARNING stages.precision=bf16-mixed: the cpu has no native bf16")
    assert "stages.precision=auto or 32-true" in note
    bf16_hardware(True)
    assert resolve_precision({"precision": "bf16", "accelerator": "cpu"}) == ("bf16", None)


@pytest.mark.parametrize("precision", ["32-true", "16-mixed", "bf16-true", "64"])
def test_other_precisions_pass_unchanged_without_probing_the_device(bf16_hardware, precision):
    calls = bf16_hardware(False)
    assert resolve_precision({"precision": precision}) == (precision, None)
    assert calls == []


def test_auto_trains_on_the_device_lightning_would_pick(monkeypatch):
    assert training_device_type("cpu") == "cpu"
    assert training_device_type("gpu") == training_device_type("CUDA") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training_device_type("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert training_device_type("auto") == "cpu"


def test_the_cpu_probe_is_onednns_own_and_unknown_devices_are_not_native():
    assert native_bf16("cpu") is bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert native_bf16("cuda") is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    assert native_bf16("tpu") is False


def test_auto_is_a_precision_the_check_accepts_and_suggests():
    check_trainer({"precision": "auto"})
    with pytest.raises(ConfigError, match="did you mean 'auto'"):
        check_trainer({"precision": "autoo"})


def test_a_resumed_auto_stage_keeps_fp32_where_bf16_is_native_and_leaves_bf16_where_it_is_not(bf16_hardware):
    """A job requeued on another machine, where auto would choose the other precision: a stage never lowers
    its precision half-way, and never emulates bf16; the line says which, and why."""
    auto = {"precision": "auto", "accelerator": "cpu"}
    bf16_hardware(True)
    precision, note = resolve_precision(auto, started_in="32-true")
    assert precision == "32-true"
    assert note == (
        "trainer.precision=auto: 32-true, as the stage started (the cpu runs bf16 natively, but a stage "
        "does not lower its precision half-way)"
    )
    bf16_hardware(False)
    precision, note = resolve_precision(auto, started_in="bf16-mixed")
    assert precision == "32-true"
    assert note.startswith("WARNING trainer.precision=auto: 32-true; the stage started in bf16-mixed")
    assert "the cpu has no native bf16" in note


def test_a_resumed_stage_on_a_like_machine_or_with_a_named_precision_continues_as_it_started(bf16_hardware):
    bf16_hardware(True)
    auto = {"precision": "auto", "accelerator": "cpu"}
    assert resolve_precision(auto, started_in="bf16-mixed") == (
        "bf16-mixed",
        "trainer.precision=auto: bf16-mixed, as the stage started",
    )
    named = {"precision": "32-true", "accelerator": "cpu"}
    assert resolve_precision(named, started_in="32-true") == ("32-true", None)
    bf16_hardware(False)
    assert resolve_precision({"precision": "bf16-mixed"}, started_in="bf16-mixed")[1].startswith("WARNING")
    # a checkpoint written before the precision was recorded: resolved afresh, as before
    assert resolve_precision(auto, started_in=None) == resolve_precision(auto)
