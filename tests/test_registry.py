"""The model-family registry: every family has its config and its config builds it; commands learn a
checkpoint's score direction and scoring from it; a mistyped family gets a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gmaiqa.errors import ConfigError
from gmaiqa.models.registry import build_model, families, family_of_config, get_family, register_model
from gmaiqa.paths import conf_dir


def gmaiqa_families() -> set[str]:
    return {name for name, f in families().items() if f.builder.__module__.startswith("gmaiqa.")}


def test_every_family_has_one_config_that_builds_it_and_trains_with_an_existing_task():
    configs = {p.stem: OmegaConf.load(p) for p in (conf_dir() / "model").glob("*.yaml")}
    assert set(configs) == gmaiqa_families()
    tasks = {p.stem for p in (conf_dir() / "task").glob("*.yaml")}
    for name, cfg in configs.items():
        assert cfg._target_ == "gmaiqa.models.registry.build_model" and cfg.family == name
        assert families()[name].task in tasks


def test_score_direction_and_scoring_per_family():
    direction = {name: (f.higher_is_better, f.scoring) for name, f in families().items()}
    assert direction["defocus_inception"] == (False, "defocus_tiles")  # its output is the defocus level
    for name in ("gmanet", "wadiqam_nr", "wadiqam_fr", "twostream_iqa", "saqm"):
        assert direction[name] == (True, "window")


def test_a_mistyped_family_names_the_key_and_the_closest_family():
    with pytest.raises(ConfigError, match=r"model.family.*'gmanett'.*did you mean 'gmanet'"):
        get_family("gmanett")
    with pytest.raises(ConfigError, match="unknown model family"):
        build_model("no_such_family")


def test_configs_written_before_the_registry_find_their_family_by_builder():
    assert family_of_config({"_target_": "gmaiqa.models.build_gmanet"}).name == "gmanet"
    assert family_of_config({"_target_": "gmaiqa.models.gmanet.build_gmanet"}).name == "gmanet"
    assert (
        family_of_config({"_target_": "gmaiqa.models.defocus.DefocusRegressor"}).name == "defocus_inception"
    )
    assert family_of_config({"family": "saqm", "_target_": "anything"}).name == "saqm"
    with pytest.raises(ConfigError, match="not a registered family"):
        family_of_config({"_target_": "torch.nn.Linear"})


def test_one_name_cannot_be_taken_by_two_builders():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("gmanet", task="gmanet")(lambda: None)
    with pytest.raises(ValueError, match="scoring"):
        register_model("new_family", task="gmanet", scoring="whole_image")


def test_one_registry_shape_serves_model_families_focus_measures_and_stack_readers():
    from gmaiqa.data.stackfile import READERS, reader_for
    from gmaiqa.data.tiff_stack import TIFF
    from gmaiqa.data.vendor import VENDOR
    from gmaiqa.errors import GmaiqaError
    from gmaiqa.focus import FOCUS_MEASURES, get_measure
    from gmaiqa.registry import Registry

    assert all(isinstance(r, Registry) for r in (READERS, FOCUS_MEASURES))
    assert reader_for(Path("a/cell.OME.TIF")) is TIFF and reader_for(Path("plate.czi")) is VENDOR
    assert get_measure(" teng ") is FOCUS_MEASURES["TENG"]  # names as users type them
    with pytest.raises(GmaiqaError, match="did you mean TENG"):
        get_measure("TENGG")

    shapes = Registry("shape", normalize=str.lower)
    disc = shapes.add("Disc", object())
    assert shapes.add("disc", disc) is disc  # the same item again is harmless
    with pytest.raises(ValueError, match="'disc' is registered twice"):
        shapes.add("DISC", object())
    with pytest.raises(ConfigError, match=r"`psf.kind`.*'dsc' \(did you mean 'disc'\?\); choose one of"):
        shapes.lookup("dsc", key="psf.kind")
    with pytest.raises(GmaiqaError, match="unknown shape 'square'; choose one of"):
        shapes.lookup("square")
