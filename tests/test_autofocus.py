"""Autofocus (gmaiqa.autofocus, issue 35): a stage double of the protocol; each strategy finds a known
peak of an analytic curve within its tolerance and budget; flat and two-peak curves are reported; the
simulated stage renders the same frame for the same z and seed and peaks at its focus; the recorded
stage snaps to the nearest plane; the Micro-Manager adapter drives a stand-in core; `gmaiqa autofocus`
writes its outputs and refuses bad options."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from gmaiqa.autofocus import STRATEGIES, Meter, Stage, search
from gmaiqa.autofocus.mmcore import MMCoreStage
from gmaiqa.autofocus.stages import RecordedStage, SimulatedStage
from gmaiqa.cli import main
from gmaiqa.data.synth_config import config_from
from gmaiqa.focus import get_measure


class CurveStage:
    """A stage whose frame is a 1x1 image holding the curve's value at the stage's z."""

    def __init__(self, curve, z_limits=(-20.0, 20.0)):
        self.curve, self.z_limits, self._z, self.moves = curve, z_limits, 0.0, 0

    @property
    def z(self) -> float:
        return self._z

    def move_to(self, z: float) -> None:
        self._z, self.moves = float(z), self.moves + 1

    def acquire(self) -> np.ndarray:
        return np.array([[self.curve(self._z)]])


def value(frame: np.ndarray) -> float:
    return float(frame[0, 0])


def peak(centre: float, width: float = 3.0, height: float = 1.0):
    return lambda z: height * math.exp(-((z - centre) ** 2) / (2 * width**2))


def test_the_protocol_double_is_a_stage():
    assert isinstance(CurveStage(peak(0.0)), Stage)
    assert isinstance(MMCoreStage(FakeCore(), range_um=10), Stage)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_finds_a_known_peak_within_its_tolerance_and_budget(strategy):
    tolerance = 0.5
    for centre in (3.7, -12.2, 17.9):
        meter = Meter(CurveStage(peak(centre, width=4.0)), value, budget=100)
        result = search(meter, strategy, -20.0, 20.0, tolerance)
        assert result.status == "ok" and abs(result.found_um - centre) <= tolerance, (centre, result)
        assert result.acquisitions == len(meter.path) <= 100
        full = math.floor(40 / tolerance) + 1
        if strategy != "full_scan":  # the point of searching: a third of a full scan's frames or fewer
            assert result.acquisitions <= full / 3, (strategy, result.acquisitions)


def test_a_spent_budget_stops_the_search_and_says_so():
    meter = Meter(CurveStage(peak(2.0)), value, budget=6)
    result = search(meter, "full_scan", -20.0, 20.0, 0.5)
    assert result.status == "budget" and result.acquisitions == 6


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_flat_curve_finds_nothing_and_says_flat(strategy):
    result = search(Meter(CurveStage(lambda z: 1.0 + 1e-4 * math.sin(z)), value, 60), strategy, -20, 20, 0.5)
    assert result.status == "flat" and result.found_um is None


def test_a_curve_with_two_peaks_is_named_with_both():
    curve = lambda z: peak(-8.0, 2.0)(z) + peak(9.0, 2.0, 0.9)(z)  # noqa: E731
    result = search(Meter(CurveStage(curve), value, 100), "full_scan", -20, 20, 0.5)
    assert result.status == "two_peaks"
    assert abs(result.peaks[0] + 8.0) <= 0.5 and abs(result.peaks[1] - 9.0) <= 0.5
    assert abs(result.found_um + 8.0) <= 0.5  # the higher one, named first


def test_the_meter_clips_to_the_limits_and_scores_a_z_once():
    stage = CurveStage(peak(0.0), z_limits=(-5.0, 5.0))
    meter = Meter(stage, value, budget=10)
    assert meter(30.0) == meter(5.0) and meter.acquisitions == 1 and stage.z == 5.0


SMALL = {"height": 96, "width": 128, "object_scale": 0.5, "groups": 1}


def test_the_simulated_stage_renders_the_same_frame_for_the_same_z_and_seed():
    cfg = config_from(preset="blood", seed=3, **SMALL)
    one, two = (SimulatedStage(cfg, 0, focus_um=2.0, z_limits=(-10, 10)) for _ in range(2))
    for stage in (one, two):
        stage.move_to(1.5)
    first = one.acquire()
    np.testing.assert_array_equal(first, two.acquire())
    one.move_to(-6.0)
    assert not np.array_equal(first, one.acquire())
    other = SimulatedStage(config_from(preset="blood", seed=4, **SMALL), 0, focus_um=2.0, z_limits=(-10, 10))
    other.move_to(1.5)
    assert not np.array_equal(first, other.acquire())


def test_the_simulated_stage_is_sharpest_at_its_focus_and_keeps_its_costs():
    cfg = config_from(preset="blood", seed=1, full_well=1e7, read_noise=0.0, **SMALL)
    stage = SimulatedStage(cfg, 0, focus_um=4.0, z_limits=(-10, 10), move_seconds=0.1, exposure_seconds=0.05)
    teng = get_measure("TENG")

    def score(frame):
        import torch

        from gmaiqa.data.io import to_float_rgb

        return float(teng(torch.from_numpy(to_float_rgb(frame)).permute(2, 0, 1)[None])[0])

    zs = np.arange(-10, 10.5, 1.0)
    scores = []
    for z in zs:
        stage.move_to(z)
        scores.append(score(stage.acquire()))
    assert abs(zs[int(np.argmax(scores))] - 4.0) <= 1.0
    assert stage.seconds == pytest.approx(len(zs) * 0.15, rel=1e-6)


def test_backlash_makes_a_reversing_move_fall_short():
    cfg = config_from(preset="blood", **SMALL)
    stage = SimulatedStage(cfg, 0, focus_um=0.0, z_limits=(-10, 10), backlash_um=0.3)
    stage.move_to(5.0)
    assert stage.z == 5.0
    stage.move_to(6.0)
    assert stage.z == 6.0  # same direction: no loss
    stage.move_to(2.0)
    assert stage.z == pytest.approx(2.3)  # reversed: short by the backlash


def test_the_recorded_stage_snaps_to_the_nearest_plane(tiny_feces):
    from dataclasses import replace

    from gmaiqa.data.dataset import load_dataset

    stack = load_dataset(tiny_feces)[0]
    recorded = RecordedStage(stack)  # the planes at their z_um
    assert recorded.z_limits == (float(stack.z_um.min()), float(stack.z_um.max()))
    assert recorded.focus_um == pytest.approx(float(stack.z_um[stack.clearest]))
    stage = RecordedStage(replace(stack, z_um=None), step_um=2.0)  # no z_um: index x step
    assert stage.z_limits == (0.0, 2.0 * (len(stack) - 1))
    stage.move_to(2.9)
    assert stage.z == 2.0 and stage.index == 1
    np.testing.assert_array_equal(stage.acquire(), stack.read(1))
    stage.move_to(3.1)
    assert stage.index == 2
    assert stage.focus_um == 2.0 * stack.clearest


class FakeCore:
    """The part of Micro-Manager's CMMCore the adapter calls, over an analytic focus curve."""

    def __init__(self):
        self.position, self.calls = 1.0, []

    def getFocusDevice(self):
        return "Z"

    def getPosition(self, device):
        return self.position

    def setPosition(self, device, z):
        self.calls.append(("setPosition", device, z))
        self.position = z

    def waitForDevice(self, device):
        self.calls.append(("waitForDevice", device))

    def snapImage(self):
        self.calls.append(("snapImage",))

    def getImage(self):
        return np.full((2, 2), peak(4.0, 3.0, 1000.0)(self.position), dtype=np.float64)


def test_the_micro_manager_adapter_drives_the_core_and_finds_focus():
    core = FakeCore()
    stage = MMCoreStage(core, range_um=30)
    assert stage.z_limits == (-14.0, 16.0) and stage.device == "Z"
    result = search(Meter(stage, value, 40), "brent", *stage.z_limits, 0.5)
    assert abs(result.found_um - 4.0) <= 0.5
    assert core.calls[:3] == [("setPosition", "Z", -14.0), ("waitForDevice", "Z"), ("snapImage",)]


def read(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_autofocus_on_a_simulated_stage_writes_its_outputs(tmp_path):
    from gmaiqa.wandb_offline import find_runs, read_run

    out = tmp_path / "af"
    args = ["autofocus", f"out={out}", "trials=2", "preset=blood", "strategy=coarse_fine", "method=TENG"]
    args += [
        "synthetic.height=96",
        "synthetic.width=128",
        "range_um=16",
        "tolerance_um=1",
        "move_seconds=0.2",
    ]
    assert main(args) == 0
    rows = read(out / "trials.csv")
    assert len(rows) == 2 and set(rows[0]) >= {"start_um", "found_um", "focus_um", "error_um", "error_dof"}
    assert all(r["strategy"] == "coarse_fine" and r["scorer"] == "TENG" for r in rows)
    assert all(int(r["acquisitions"]) <= 60 and float(r["seconds"]) > 0 for r in rows)
    for r in rows:
        assert float(r["error_um"]) == pytest.approx(float(r["found_um"]) - float(r["focus_um"]), abs=1e-3)
    (summary,) = read(out / "summary.csv")
    assert int(summary["trials"]) == 2 and (out / "path.png").stat().st_size > 1000
    run = read_run(find_runs(out / "wandb")[0])
    assert any(f.startswith("media/table/autofocus/trials") for f in run["files"])
    assert not list(out.glob("*.partial*"))


def test_autofocus_on_recorded_stacks_scores_each_group(tiny_feces, tmp_path):
    out = tmp_path / "af"
    args = ["autofocus", "stage=recorded", f"input={tiny_feces}", f"out={out}", "strategy=full_scan"]
    assert main([*args, "method=TENG", "logger.wandb.mode=disabled"]) == 0
    rows = read(out / "trials.csv")
    assert len(rows) == 8 and all(r["error_dof"] != "" for r in rows)
    planes: dict[str, set[float]] = {}
    for plane in read(tiny_feces / "manifest.csv"):
        planes.setdefault(plane["group"], set()).add(round(float(plane["z_um"]), 4))
    assert all(round(float(r["found_um"]), 4) in planes[r["group"]] for r in rows)  # a recorded plane


@pytest.mark.parametrize(
    "option, key",
    [
        ("strategy=bren", "did you mean 'brent'"),
        ("stage=recordd", "did you mean 'recorded'"),
        ("budget=1", "budget"),
        ("crop=0", "crop"),
        ("range_um=-3", "range_um"),
        ("trials=0", "trials"),
        ("synthetic.psf=gausian", "synthetic.psf"),
        ("preset=feses", "preset"),
        ("method=TENGG", "did you mean TENG"),
        ("method=rank:TENG+VOLA", "leave VOLA out of the fusion"),
    ],
)
def test_autofocus_refuses_bad_options_with_one_message_and_creates_nothing(option, key, tmp_path, capsys):
    out = tmp_path / "af"
    assert main(["autofocus", f"out={out}", option, "logger.wandb.mode=disabled"]) == 2
    err = capsys.readouterr().err
    assert key in err and err.count("error:") == 1
    assert not out.exists()


def test_recorded_without_input_is_one_message(tmp_path, capsys):
    assert main(["autofocus", "stage=recorded", f"out={tmp_path / 'af'}"]) == 2
    assert "input=DIR" in capsys.readouterr().err


def test_the_default_scorer_scores_frames_when_nothing_is_named():
    from gmaiqa.autofocus.scorers import frame_scorer

    score, label = frame_scorer(OmegaConf.create({"method": None, "ckpt": None, "crop": 0.5}))
    assert label.startswith("default (")
    cfg = config_from(preset="blood", seed=1, full_well=1e7, read_noise=0.0, **SMALL)
    sim = SimulatedStage(cfg, 0, focus_um=0.0, z_limits=(-8, 8))
    sim.move_to(0.0)
    sharp = score(sim.acquire())
    sim.move_to(7.0)
    assert sharp > score(sim.acquire())


def test_a_stack_normalised_model_zscores_a_search_by_its_first_frame():
    """The default model was trained with data.normalize=stack; a search has no stack, so every frame of
    one search is z-scored by the first frame's statistics (gmaiqa.autofocus.scorers), and each Meter
    (each search) takes its own first frame. Scored alone, each frame by its own statistics, a defocused
    frame gets back the contrast defocus took and the model can no longer tell it from the focused one."""
    from gmaiqa.autofocus.scorers import frame_scorer
    from gmaiqa.data.io import to_float_rgb
    from gmaiqa.data.transforms import stack_statistics

    score, _ = frame_scorer(OmegaConf.create({"method": None, "ckpt": None, "crop": 1.0}))
    assert score.reference  # the shipped model is stack-normalised
    cfg = config_from(preset="blood", seed=1, **SMALL)
    sim = SimulatedStage(cfg, 0, focus_um=0.0, z_limits=(-8, 8))
    frames = {}
    for z in (4.0, 0.0, -8.0):  # the search starts 4 µm off focus
        sim.move_to(z)
        frames[z] = sim.acquire()
    search = score.for_search()
    start, focus, far = (search(frames[z]) for z in (4.0, 0.0, -8.0))
    assert focus > start > far and focus - far > 5  # points of the 0-100 scale
    reference = stack_statistics([to_float_rgb(frames[4.0])])
    assert far == pytest.approx(score.score(frames[-8.0], reference))  # the first frame's statistics
    assert score.for_search()(frames[-8.0]) == pytest.approx(score.score(frames[-8.0], None))  # a new search
    meter = Meter(sim, score, budget=5)
    meter(-8.0)  # this search's first frame is its own reference, whatever an earlier search saw
    assert meter.path[0].score == pytest.approx(score.score(frames[-8.0], None))


def test_a_fusion_scores_frames_by_its_members_and_the_crop_scores_the_centre():
    from scipy import ndimage

    from gmaiqa.autofocus.scorers import frame_scorer

    rng = np.random.default_rng(0)
    sharp = (ndimage.gaussian_filter(rng.uniform(0, 1, (64, 96)), 1.0) * 255).astype(np.uint8)
    blurred = ndimage.gaussian_filter(sharp.astype(float), 3).astype(np.uint8)
    fusion, name = frame_scorer(OmegaConf.create({"method": "rank:TENG+GLVN", "ckpt": None, "crop": 1.0}))
    assert name == "rank:TENG+GLVN" and fusion(sharp) > fusion(blurred)
    # a frame sharp only at its border: the centre crop sees the blurred part alone
    border = blurred.copy()
    border[:16], border[-16:] = sharp[:16], sharp[-16:]
    teng_centre, _ = frame_scorer(OmegaConf.create({"method": "TENG", "ckpt": None, "crop": 0.5}))
    teng_whole, _ = frame_scorer(OmegaConf.create({"method": "TENG", "ckpt": None, "crop": 1.0}))
    assert teng_centre(border) == pytest.approx(teng_centre(blurred)) and teng_whole(border) > teng_whole(
        blurred
    )
