"""Synthetic z-stacks: contract, annotation rule, physics, determinism, difficulty."""

import json

import numpy as np
import pytest
import torch

from gmaiqa.data.dataset import inspect_dataset, load_dataset
from gmaiqa.data.io import read_raw
from gmaiqa.data.synthetic import PRESETS, SynthConfig, _score, config_from, render_group
from gmaiqa.data.synthetic_dataset import generate
from gmaiqa.errors import ConfigError
from gmaiqa.paths import conf_dir
from helpers.tiny import compose_train

SMALL = dict(height=64, width=96, images=(8, 12), object_scale=0.25)


def test_scores_follow_the_papers_rule():
    cfg = SynthConfig()
    s = _score(np.array([-3.2, -2.2, -1.2, -0.2, 0.8, 1.8, 10.0, 20.0]), cfg)
    assert s[3] == 100 and list(s).count(100) == 1
    assert 95 <= s[4] <= 99  # within the depth of field: "other clear images 95-99"
    assert all(s[i] <= 94 for i in (0, 1, 2, 5, 6, 7))  # blurred: 94 -> 0 by defocus
    assert s[2] > s[1] > s[0] and s[5] > s[6] > s[7] == 0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_renders_a_stack_through_focus(preset):
    images, meta = render_group(SynthConfig(preset=preset, **SMALL), 0)
    mode, bits = PRESETS[preset].modality, PRESETS[preset].bit_depth
    shape = (64, 96, 3) if mode == "brightfield" else (64, 96)  # fluorescence and reflected: mono cameras
    assert 8 <= len(images) <= 12 and all(image.shape == shape for image in images)
    assert images[0].dtype == (np.uint8 if bits == 8 else np.uint16)
    assert max(int(image.max()) for image in images) <= 2**bits - 1  # 12-bit data in a 16-bit file
    scores = np.array(meta["scores"])
    best = meta["clearest"]
    assert scores[best] == 100 and 0 < best < len(images) - 1
    assert np.all(np.diff(scores[: best + 1]) >= 0) and np.all(np.diff(scores[best:]) <= 0)  # unimodal
    focus = np.array(meta["focus_um"])
    assert np.all(np.diff(focus) > 0)  # one defocused side to the other


def test_in_focus_index_is_not_always_central():
    positions = {render_group(SynthConfig(**SMALL), i)[1]["clearest"] / 1.0 for i in range(12)}
    assert len(positions) > 3


def test_sharpness_peaks_near_focus_in_a_simple_specimen():
    images, meta = render_group(
        SynthConfig(preset="blood", height=128, width=160, images=(13, 13), object_scale=0.5), 1
    )
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    from gmaiqa.focus import get_measure

    values = get_measure("TENG")(x)
    assert abs(int(values.argmax()) - meta["clearest"]) <= 1
    assert values[meta["clearest"]] > 1.5 * values[0] and values[meta["clearest"]] > 1.5 * values[-1]


def test_defocus_halos_differ_on_either_side_of_focus(monkeypatch):
    """One refractile spore exactly at the focal layer. With a symmetric blur alone, the frames equally
    far below and above focus are identical; the transport-of-intensity halo (dI ~ -dz * laplacian of
    the phase) changes sign with dz, so with halos they differ, and by opposite amounts around focus."""
    import gmaiqa.data.specimen as specimen
    import gmaiqa.data.synthetic as synthetic

    def one_spore(preset, cfg, pad, rng):
        density, phase = specimen.render_object("spore", 30.0, rng)
        h, w = density.shape
        od = density[..., None] * np.float32(0.7) * np.ones(3, np.float32)
        y, x = pad + cfg.height // 2 - h // 2, pad + cfg.width // 2 - w // 2
        return [specimen.SpecimenObject("spore", 0.0, y, x, od, phase * 1.5)], {
            "concentration": "low",
            "counts": {"spore": 1},
        }

    monkeypatch.setattr(synthetic, "place_objects", one_spore)

    def frames(halo_gain):
        cfg = SynthConfig(
            preset="blood",
            height=96,
            width=96,
            images=(15, 15),
            object_scale=1.0,
            full_well=1e12,
            read_noise=0,
            halo_gain=halo_gain,
            focus_jitter=0,
            flicker=0,
        )
        images, meta = render_group(cfg, 0)
        best = meta["clearest"]
        assert 2 <= best <= len(images) - 3
        return [images[best + d].astype(float) for d in (-2, 0, 2)]

    below, focus, above = frames(0.0)
    assert np.abs(below - above).max() <= 1  # symmetric defocus without halos
    below, focus, above = frames(1.0)
    assert np.abs(below - above).max() > 10
    halo_below, halo_above = below - focus, above - focus
    odd = (halo_below - halo_above) / 2  # the part that flips sign with dz
    assert odd.max() > 5 and odd.min() < -5


def test_deterministic_and_independent_of_workers(tmp_path):
    cfg = config_from(preset="leucorrhea", groups=3, seed=5, **SMALL)
    a, b = generate(cfg, tmp_path / "a", workers=1), generate(cfg, tmp_path / "b", workers=2)
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()
    for path in sorted(a.rglob("*.png")):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()
    other = generate(config_from(preset="leucorrhea", groups=3, seed=6, **SMALL), tmp_path / "c")
    assert (other / "manifest.csv").read_text() != (a / "manifest.csv").read_text()


def test_written_dataset_passes_check_and_records_provenance(tiny_feces):
    assert inspect_dataset(tiny_feces).ok
    record = json.loads((tiny_feces / "synth.json").read_text())
    assert record["config"]["preset"] == "feces" and len(record["groups"]) == 8
    assert {g["concentration"] for g in record["groups"]} <= {"low", "high"}


def test_never_overwrites_foreign_files(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="did not write"):
        generate(config_from(groups=1, **SMALL), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    out = generate(config_from(groups=2, **SMALL), tmp_path / "d")
    with pytest.raises(ConfigError, match="overwrite=true"):
        generate(config_from(groups=1, **SMALL), out)
    generate(config_from(groups=1, **SMALL), out, overwrite=True)
    assert not (out / "g0001").exists() and inspect_dataset(out).ok


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match="did you mean 'feces'"):
        SynthConfig(preset="faeces")
    with pytest.raises(ConfigError, match="images"):
        config_from(images=[1, 3])
    with pytest.raises(ConfigError, match="colour"):
        config_from(colour=1)
    with pytest.raises(ConfigError, match=r"split_ratios.*summing to 1"):
        config_from(split_ratios=[0.8, 0.3, 0.0])


def test_the_split_column_follows_split_ratios(tmp_path):
    """split=true writes the paper's 0.6/0.2/0.2 by default and the shares asked for otherwise, with no
    test group where the test share is 0 (default_model draws its held-out groups apart)."""

    def counts(out, **options):
        generate(config_from(groups=10, split=True, **SMALL, **options), out)
        rows = (out / "manifest.csv").read_text().splitlines()[1:]
        split_of = {row.split(",")[0]: row.split(",")[5] for row in rows}
        return {name: list(split_of.values()).count(name) for name in ("train", "val", "test")}

    assert counts(tmp_path / "paper") == {"train": 6, "val": 2, "test": 2}
    assert counts(tmp_path / "no_test", split_ratios=[0.8, 0.2, 0.0]) == {"train": 8, "val": 2, "test": 0}


def test_feces_is_harder_than_blood_for_tenengrad():
    """The paper's difficulty in miniature: large sharp objects at other depths pull Tenengrad away."""
    from gmaiqa.focus import get_measure
    from gmaiqa.metrics import ClearestSelection

    accuracy = {}
    for preset in ("feces", "blood"):
        metric = ClearestSelection()
        for i in range(12):
            images, meta = render_group(
                SynthConfig(preset=preset, height=96, width=128, object_scale=0.25, images=(10, 14), seed=0),
                i,
            )
            x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
            metric.update(get_measure("TENG").clarity(x), meta["clearest"])
        accuracy[preset] = metric.compute()["t0"].item()
    assert accuracy["blood"] > accuracy["feces"]


def test_generation_reports_progress_over_images(tmp_path):
    """First use of a synthetic set shows a bar over images: the total is known before any is rendered."""
    from gmaiqa.data.synthetic import images_in_group

    cfg = config_from(preset="blood", groups=3, seed=1, height=64, width=96, images=[4, 7])
    calls = []
    generate(cfg, tmp_path / "set", progress=lambda done, total: calls.append((done, total)))
    per_group = [images_in_group(cfg, i) for i in range(3)]
    written = [len(render_group(cfg, i)[0]) for i in range(3)]
    assert per_group == written
    assert [done for done, _ in calls] == [sum(written[: i + 1]) for i in range(3)]
    assert {total for _, total in calls} == {sum(written)}


def _noiseless(**options) -> SynthConfig:
    return SynthConfig(full_well=1e12, read_noise=0.0, flicker=0.0, focus_jitter=0.0, **options)


def _means(images) -> np.ndarray:
    return np.array([float(np.mean(image)) for image in images])


def test_fluorescence_is_emission_over_a_dark_background_that_defocus_spreads_but_keeps():
    """Widefield fluorescence: a dark field with bright objects; the OTF keeps its DC term, so a
    defocused frame holds the same light as the focused one (only bleaching dims the stack)."""
    preset = PRESETS["fluorescence"]
    cfg = _noiseless(preset="fluorescence", height=160, width=192, images=(12, 12), object_scale=0.5)
    images, meta = render_group(cfg, 3)
    best = images[meta["clearest"]].astype(np.float64) / 65535
    assert np.median(best) < 3 * preset.background_level and best.max() > 10 * np.median(best)
    signal = _means([image.astype(np.float64) / 65535 for image in images]) - preset.background_level
    unbleached = signal / np.exp(-preset.bleach_per_image * np.arange(len(images)))
    assert unbleached.std() / unbleached.mean() < 0.03  # defocus moves light, it does not remove it
    assert signal[-1] < signal[0]  # ... and the dye bleaches


def test_reflected_light_images_step_edges_dark_and_focuses_on_the_top_layer():
    from gmaiqa.data.specimen import _edges, _pattern

    mask = _pattern("lines", (64, 64), 16.0, np.random.default_rng(0))
    edges = _edges(mask, 1)
    steps = np.abs(np.diff(mask, axis=1)) > 0.3  # vertical lines: the material steps along x
    assert edges[:, 1:][steps].mean() > 0.5 and edges[mask > 0.99].mean() < 0.1
    from gmaiqa.focus import get_measure

    for index in range(3):
        cfg = SynthConfig(preset="reflected", height=128, width=160, images=(11, 11), object_scale=0.5)
        images, meta = render_group(cfg, index)
        assert meta["surface"]["buried_um"] < 0 and meta["element_depth_um"] == 0.0
        x = torch.from_numpy(np.stack(images)[:, None].astype(np.float32) / 255).expand(-1, 3, -1, -1)
        values = get_measure("TENG")(x)
        # the top layer in focus is the sharpest frame, the far ends are not
        assert abs(int(values.argmax()) - meta["clearest"]) <= 1
        assert values[meta["clearest"]] > 1.5 * min(values[0], values[-1])


def test_exposure_drift_changes_brightness_through_the_stack_only_when_asked():
    cfg = dict(preset="blood", height=96, width=128, images=(10, 10), object_scale=0.5)
    steady = _means(render_group(_noiseless(**cfg), 0)[0])
    drifting = _means(render_group(_noiseless(exposure_drift=0.3, **cfg), 0)[0])
    assert np.ptp(steady) / steady.mean() < 0.03
    assert np.ptp(drifting) / drifting.mean() > 0.1
    ratio = drifting / steady  # a linear ramp of exposure over the frames
    assert np.abs(np.diff(ratio, 2)).max() < 0.01


def test_the_camera_settings_override_the_preset_and_are_checked():
    images, _ = render_group(SynthConfig(preset="blood", bit_depth=16, **SMALL), 0)
    assert images[0].dtype == np.uint16 and int(images[0].max()) > 4095
    with pytest.raises(ConfigError, match="bit_depth"):
        SynthConfig(bit_depth=10)
    with pytest.raises(ConfigError, match="full_well"):
        config_from(full_well="many")
    assert config_from(bit_depth="12").bit_depth == 12


@pytest.mark.parametrize("option", sorted(p.stem for p in (conf_dir() / "eval_datasets").glob("*.yaml")))
def test_every_eval_datasets_option_names_valid_synthetic_sets(option):
    from omegaconf import OmegaConf

    cfg = compose_train(None, [f"eval_datasets={option}"])
    entries = OmegaConf.to_container(cfg.eval_datasets, resolve=True) or {}
    synthetic = {name: e["synthetic"] for name, e in entries.items() if e.get("synthetic")}
    for name, options in synthetic.items():
        assert config_from(**{k: v for k, v in options.items() if k != "workers"}).preset == name
    if option == "microscopes":
        assert set(synthetic) == {"dense", "fluorescence", "reflected"}


def test_a_mixture_of_presets_is_one_dataset_that_trains(tmp_path):
    """data.synthetic.mixture: every member generated into its own folder with the shared options under
    its own, one manifest naming groups <i>-<preset>/<group>; a one-step training reads it."""
    from gmaiqa.cli import main
    from gmaiqa.data.datamodule import dataset_root
    from helpers.tiny import one_step

    mixture = {
        "groups": 3,
        "height": 96,
        "width": 128,
        "images": [6, 7],
        "object_scale": 0.25,
        "workers": 1,
        "mixture": [{"preset": "feces"}, {"preset": "fluorescence", "seed": 4, "groups": 2}],
    }
    root = dataset_root(None, mixture, tmp_path / "cache")
    assert root.name.startswith("mixture-") and inspect_dataset(root).ok
    stacks = load_dataset(root)
    assert sorted({s.group.split("/")[0] for s in stacks}) == ["00-feces", "01-fluorescence"]
    assert len(stacks) == 5 and all(s.pixel_um == 0.8 for s in stacks)
    fluorescence = next(s for s in stacks if s.group.startswith("01-"))
    member = json.loads((root / "01-fluorescence" / "synth.json").read_text())
    assert member["config"]["seed"] == 4 and member["config"]["height"] == 96  # own seed, shared size
    assert read_raw(fluorescence.paths[0]).dtype == np.uint16
    assert dataset_root(None, mixture, tmp_path / "cache") == root  # generated once, then reused

    members = "[{preset:feces},{preset:fluorescence,seed:4,groups:2}]"
    overrides = [a for a in one_step(tmp_path) if not a.startswith(("data.root=", "data.synthetic="))]
    overrides += [
        f"data.synthetic.{k}={v}" for k, v in (("groups", 3), ("height", 96), ("width", 128), ("workers", 1))
    ]
    overrides += ["data.synthetic.images=[6,7]", "+data.synthetic.object_scale=0.25"]
    assert (
        main(
            [
                "train",
                "experiment=gmanet_l1_direct",
                *overrides,
                f"data.synthetic.mixture={members}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"paths.run_dir={tmp_path / 'run'}",
                "evaluate=false",
            ]
        )
        == 0
    )
    assert (tmp_path / "run" / "done.json").is_file()
