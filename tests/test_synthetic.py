"""Synthetic z-stacks: contract, annotation rule, physics, determinism, difficulty."""

import json

import numpy as np
import pytest
import torch

from gmaiqa.data.dataset import inspect_dataset
from gmaiqa.data.synthetic import PRESETS, SynthConfig, _score, config_from, generate, render_group
from gmaiqa.errors import ConfigError

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
    assert 8 <= len(images) <= 12 and images[0].shape == (64, 96, 3) and images[0].dtype == np.uint8
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
