"""Every registered model family (gmaiqa.models.registry, one config each in conf/model/) meets
gmaiqa.models.contract: built from its config, it scores a
batch of images as a (B,) ``output1`` and says whether it needs the attention map; a stage sets only
keys its model has."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gmaiqa.inference import image_scores
from gmaiqa.models.contract import FocusModel
from gmaiqa.paths import conf_dir
from helpers.tiny import compose_train

MODELS = sorted(p.stem for p in (conf_dir() / "model").glob("*.yaml"))  # = the registered families
# CPU-sized variants of the same architectures (the contract does not depend on widths)
SMALL = {
    "gmanet": ["model.head_channels=16", "model.aggregation_channels=16"],
    "saqm": ["model.width=0.25", "model.channels=32", "model.hidden=16"],
}


def build(name: str, extra: list[str] = ()):
    cfg = compose_train(None, [f"model={name}", "paths.run_dir=/tmp/unused", *SMALL.get(name, []), *extra])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random init instead of ImageNet weights
        return instantiate(OmegaConf.to_container(cfg.model, resolve=True)).eval(), cfg


def test_every_model_config_is_covered():
    assert {"gmanet", "wadiqam_nr", "wadiqam_fr", "twostream_iqa", "saqm", "defocus_inception"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_meets_the_contract(name):
    net, cfg = build(name)
    assert isinstance(net, FocusModel) and isinstance(net.uses_attention_map, bool)
    assert "lightning" not in inspect.getsource(inspect.getmodule(type(net)))
    image, attention = torch.randn(2, 3, 96, 128), torch.rand(2, 1, 96, 128)
    with torch.no_grad():
        out = net(image, attention if net.uses_attention_map else None)
    assert out["output1"].shape == (2,) and torch.isfinite(out["output1"]).all()
    # what scoring computes (Output1 alone where the model offers it) is what its forward pass gives
    with torch.no_grad():
        scored = image_scores(net, image, attention if net.uses_attention_map else None)
    torch.testing.assert_close(scored, out["output1"], rtol=1e-5, atol=1e-5)
    # a protocol phase belongs to its model: only GMANet knows mask attention
    assert ("mask_attention_depth" in cfg.model) == (name == "gmanet")


TRUNK_CONFIGS = sorted(p.stem for p in (conf_dir() / "model" / "backbone").glob("*.yaml"))


def test_every_trunk_has_a_config():
    from gmaiqa.models.gmanet import TRUNKS

    assert TRUNK_CONFIGS == sorted(TRUNKS)


@pytest.mark.parametrize("trunk", TRUNK_CONFIGS)
def test_gmanet_meets_the_contract_on_every_trunk(trunk):
    net, cfg = build("gmanet", [f"model/backbone={trunk}"])
    assert cfg.model.backbone.name == trunk and isinstance(net, FocusModel)
    image, attention = torch.randn(2, 3, 96, 128), torch.rand(2, 1, 96, 128)
    with torch.no_grad():
        out = net(image, attention)
        scored = image_scores(net, image, attention)
    assert out["output1"].shape == (2,) and out["score_map"].shape == (2, 1, 6, 8)  # 1/16 on every trunk
    torch.testing.assert_close(scored, out["output1"], rtol=1e-5, atol=1e-5)


def test_gmanet_needs_the_map_from_l1_on():
    l0, _ = build("gmanet", ["model.mask_attention_depth=0"])
    l1, _ = build("gmanet", ["model.mask_attention_depth=1"])
    assert (l0.uses_attention_map, l1.uses_attention_map) == (False, True)


def test_a_stage_may_only_override_its_models_own_keys():
    from gmaiqa.errors import ConfigError
    from gmaiqa.stages import stage_model

    cfg = compose_train("baseline_wadiqam_nr", ["paths.run_dir=/tmp/unused"])
    stage = OmegaConf.create({"name": "wadiqam_nr", "model": {"mask_attention_depth": 1}})
    with pytest.raises(ConfigError, match="stages.wadiqam_nr.model.mask_attention_depth"):
        stage_model(cfg, stage)
    gmanet = compose_train("gmanet_paper", ["paths.run_dir=/tmp/unused"])
    assert [stage_model(gmanet, s)["mask_attention_depth"] for s in gmanet.stages] == [0, 1]
    old = OmegaConf.create(
        {"name": "l1", "mask_attention_depth": 1}
    )  # the key before stages had model overrides
    with pytest.warns(FutureWarning, match="model: {mask_attention_depth: N}"):
        assert stage_model(gmanet, old)["mask_attention_depth"] == 1
