"""GMANet and its backbones at small inputs (CPU, random init; nothing is downloaded)."""

import warnings

import pytest
import torch
import torchvision

from gmaiqa.errors import ConfigError
from gmaiqa.models import build_gmanet, improved_global_average_pool
from gmaiqa.models.backbones import resnet50, vgg16_bn
from gmaiqa.models.gmanet import TRUNKS
from gmaiqa.models.light_trunks import LIGHT_TRUNKS, conv_path_receptive_field
from gmaiqa.models.mask_attention import MaskAttentionConv

warnings.filterwarnings("ignore", message=".*random init.*")


@pytest.fixture(scope="module")
def x():
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 64, 96, generator=g), torch.rand(2, 1, 64, 96, generator=g)


# every depth x aux on the heavy trunks; the light ones (same GMANet code) at L0 with and L2 without aux
SHAPE_CASES = [(b, d, a) for b in ("vgg16_bn", "resnet50") for d in (0, 1, 2) for a in (True, False)]
SHAPE_CASES += [(b, d, a) for b in sorted(LIGHT_TRUNKS) for d, a in ((0, True), (2, False))]


@pytest.mark.parametrize("backbone, depth, aux", SHAPE_CASES)
def test_output_shapes(x, backbone, depth, aux):
    net = build_gmanet(backbone=backbone, mask_attention_depth=depth, aux_outputs=aux).eval()
    with torch.no_grad():
        out = net(*x)
    assert out["output1"].shape == (2,) and out["score_map"].shape == (
        2,
        1,
        4,
        6,
    )  # 1/16, as 32x48 for 512x768
    assert ("output2" in out) == aux and ("output3" in out) == aux
    assert (out["score_map"] >= 0).all()


def test_aggregated_maps_have_the_papers_sizes(x):
    net = build_gmanet().eval()
    with torch.no_grad():
        f = net.forward_features(*x)
    # 512x768 -> Layer5 32x48x512, Deconv4 64x96x512, Deconv3 128x192x512; here 64x96 -> /8
    assert f["layer5"].shape == (2, 512, 4, 6)
    assert f["deconv4"].shape == (2, 512, 8, 12)
    assert f["deconv3"].shape == (2, 512, 16, 24)


@pytest.mark.parametrize("build", list(TRUNKS.values()), ids=list(TRUNKS))
def test_feature_info_matches_real_outputs(build):
    backbone = build().eval()
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 64, 96))
    for info, f in zip(backbone.feature_info, feats):
        assert f.shape[1] == info["channels"]
        assert (64 // f.shape[2], 96 // f.shape[3]) == (info["reduction"], info["reduction"])


def test_the_light_trunks_are_torchvision_models_at_a_fraction_of_vgg16_bns_size():
    sizes = {
        name: sum(p.numel() for p in TRUNKS[name]().parameters()) for name in ("vgg16_bn", *LIGHT_TRUNKS)
    }
    assert all(sizes[name] < sizes["vgg16_bn"] / 1.3 for name in LIGHT_TRUNKS), sizes
    # the same tensors as torchvision's classifier trunks (nothing re-written by hand): a torchvision
    # state dict loads strictly, and its first convolution is the stem's
    for name, build in LIGHT_TRUNKS.items():
        reference = getattr(torchvision.models, name)(weights=None)
        first = next(m for m in reference.modules() if isinstance(m, torch.nn.Conv2d))
        path = f"/tmp/gmaiqa_test_{name}.pth"
        torch.save(reference.state_dict(), path)
        trunk = build(weights_path=path)
        torch.testing.assert_close(trunk.stages[0][0].conv.weight, first.weight)


def test_receptive_fields_follow_the_convolution_path():
    """The helper reproduces the heavy trunks' hand-derived fields (VGG16-BN conv5_3: 196 px; the
    dilated ResNet-50: 427 px) and grows with the dilation that keeps the light trunks at 1/16."""
    for build, known in ((vgg16_bn, 196), (resnet50, 427)):
        trunk = build()
        assert conv_path_receptive_field(list(map(list, trunk.stages))) == trunk.receptive_field == known
    for build in LIGHT_TRUNKS.values():
        trunk = build()
        assert trunk.receptive_field == conv_path_receptive_field(list(map(list, trunk.stages))) > 196


@pytest.mark.parametrize("backbone", sorted(LIGHT_TRUNKS))
def test_light_trunks_attend_in_their_first_stages_only(x, backbone):
    """Depth 1 puts mask attention on every convolution of the first stage, depth 2 of the second too;
    a zero map reproduces L0 (Eq. 7's 1 + M' = 1) and a real one changes the features. (Compared on the
    first stage's features: at random init in eval mode the mobile trunks' deep activations vanish,
    so their scores all sit at the head's initial bias.)"""
    net = build_gmanet(backbone=backbone, mask_attention_depth=2)
    attending = [
        [m.attend for m in stage.modules() if isinstance(m, MaskAttentionConv)]
        for stage in net.backbone.stages
    ]
    assert all(attending[0]) and all(attending[1]) and not any(sum(attending[2:], []))
    assert len(attending[1]) > 1  # every convolution of the blocks, not only the first
    l0 = build_gmanet(backbone=backbone, mask_attention_depth=0).eval()
    l1 = build_gmanet(backbone=backbone, mask_attention_depth=1).eval()
    l1.load_state_dict(l0.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(l1(x[0], torch.zeros_like(x[1]))["output1"], l0(x[0])["output1"])
        plain, attended = l0.backbone(x[0])[0], l1.backbone(x[0], x[1])[0]
        assert plain.shape == attended.shape and not torch.allclose(plain, attended)


def test_mask_attention_adds_no_parameters_and_l0_loads_strictly_into_l1_l2(x):
    l0 = build_gmanet(mask_attention_depth=0)
    for depth in (1, 2):
        other = build_gmanet(mask_attention_depth=depth)
        assert other.state_dict().keys() == l0.state_dict().keys()
        other.load_state_dict(l0.state_dict(), strict=True)
    l1 = build_gmanet(mask_attention_depth=1).eval()
    l1.load_state_dict(l0.state_dict(), strict=True)
    l0.eval()
    with torch.no_grad():
        zero_map = torch.zeros_like(x[1])
        # with M = 0, (1 + M') = 1: L1 reproduces L0 exactly
        torch.testing.assert_close(l1(x[0], zero_map)["output1"], l0(x[0])["output1"])
        assert not torch.allclose(l1(*x)["output1"], l0(x[0])["output1"])


def test_depth_selects_which_stages_attend():
    net = build_gmanet(mask_attention_depth=2)
    attending = [
        any(m.attend for m in stage.modules() if isinstance(m, MaskAttentionConv))
        for stage in net.backbone.stages
    ]
    assert attending == [True, True, False, False, False]
    net.set_attention_depth(0)
    assert not any(m.attend for m in net.modules() if isinstance(m, MaskAttentionConv))
    with pytest.raises(ConfigError, match="mask_attention_depth"):
        net.set_attention_depth(3)


def test_gma_block_equation_7():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    torch.nn.init.ones_(conv.weight)
    bn = torch.nn.BatchNorm2d(1).eval()
    block = MaskAttentionConv(conv, bn, torch.nn.LeakyReLU(0.1))
    block.attend = True
    image = torch.ones(1, 1, 5, 5)
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 2, 2] = 9.0
    y, m = block(image, mask)
    # centre: conv of ones = 9, M' = avg of 3x3 around = 1 -> (1 + 1) * 9 = 18 (BN in eval ~ identity)
    assert y[0, 0, 2, 2].item() == pytest.approx(18.0, rel=1e-4)
    assert m[0, 0, 2, 2].item() == pytest.approx(1.0)
    # corner: conv = 4 (zero padding), M' = 0 over its 2x2 window -> 4
    assert y[0, 0, 0, 0].item() == pytest.approx(4.0, rel=1e-4)
    neg, _ = block(-image, mask)
    assert neg[0, 0, 2, 2].item() == pytest.approx(-1.8, rel=1e-4)  # LeakyReLU


def test_improved_global_average_pooling():
    m = torch.tensor([[[[0.0, 2.0], [4.0, 0.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    torch.testing.assert_close(improved_global_average_pool(m), torch.tensor([3.0, 0.0]))


def test_improved_global_average_pooling_keeps_a_bf16_maps_small_differences():
    """Under bf16 autocast the score map is bf16 and the pool must not be: two 32x48 maps whose means
    differ by 0.125 near 50 (a bf16 sum of either rounds to 76,800) keep their order, in float32."""
    maps = torch.full((2, 1, 32, 48), 50.0, dtype=torch.bfloat16)
    maps[1, 0, :16] = 50.25
    scores = improved_global_average_pool(maps)
    assert scores.dtype == torch.float32
    assert scores.tolist() == [50.0, 50.125]
    net = build_gmanet(backbone={"name": "mobilenet_v3_large"}, mask_attention_depth=0).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert net.output1(torch.randn(2, 3, 64, 96)).dtype == torch.float32


def _conv_and_batch_norm_tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d))]
    return [t for m in layers for t in m.state_dict().values()]


def test_weights_from_a_local_torchvision_file(tmp_path):
    """Every tensor the trunk keeps is the file's, batch-norm statistics included (the network the file
    is copied into is laid out uninitialised: a tensor the load missed would be whatever memory held)."""
    reference = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=[False, False, True])
    generator = torch.Generator().manual_seed(1)
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(generator=generator)
            m.running_var.uniform_(0.5, 2.0, generator=generator)
            m.num_batches_tracked.fill_(7)
    path = tmp_path / "resnet50.pth"
    torch.save(reference.state_dict(), path)
    net = build_gmanet(backbone={"name": "resnet50", "weights_path": str(path)})
    kept, given = _conv_and_batch_norm_tensors(net.backbone), _conv_and_batch_norm_tensors(reference)
    assert len(kept) == len(given) > 300
    assert all(torch.equal(a, b) for a, b in zip(kept, given))
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="not a torchvision resnet50 state dict"):
        build_gmanet(backbone={"name": "resnet50", "weights_path": str(tmp_path / "bad.pth")})
    with pytest.raises(ConfigError, match="does not exist"):
        build_gmanet(backbone={"name": "vgg16_bn", "weights_path": str(tmp_path / "missing.pth")})


def test_vgg16_bn_random_init_is_torchvisions_without_building_its_classifier():
    """The trunk's random init skips the ImageNet classifier GMANet drops (123 M weights, seconds on a
    CPU) and keeps torchvision's init of the features: the same layers and shapes, He-normal fan-out
    convolutions (std sqrt(2 / fan_out)) with zero bias, batch norms at 1 and 0 with fresh statistics."""
    from gmaiqa.models.backbones import _vgg16_bn_random

    torch.manual_seed(0)
    built = _vgg16_bn_random()
    assert all(p.is_meta for p in built.classifier.parameters())
    ours = built.features.state_dict()
    theirs = torchvision.models.vgg16_bn(weights=None).features.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    for name, tensor in ours.items():
        assert not tensor.is_meta, name
        if name.endswith("weight") and tensor.dim() == 4:
            expected = (2 / (tensor.shape[0] * tensor.shape[2] * tensor.shape[3])) ** 0.5
            assert tensor.std().item() == pytest.approx(expected, rel=0.05), name
            assert tensor.std().item() == pytest.approx(theirs[name].std().item(), rel=0.05), name
        else:  # conv biases, batch-norm affine parameters and running statistics are constants
            assert torch.equal(tensor, theirs[name]), name
    # and the GMANet trunk built on it holds no tensor left on the meta device
    assert not any(t.is_meta for t in vgg16_bn().state_dict().values())


def test_random_init_warns_and_unknown_backbone_suggests():
    with pytest.warns(UserWarning, match="random init"):
        vgg16_bn()
    with pytest.raises(ConfigError, match="did you mean 'resnet50'"):
        build_gmanet(backbone="resnet5")


def test_missing_attention_map_is_a_clear_error(x):
    with pytest.raises(ValueError, match="attention map"):
        build_gmanet(mask_attention_depth=1)(x[0])


@pytest.mark.parametrize("backbone", sorted(LIGHT_TRUNKS))
def test_a_light_trunk_with_top_reduction_32_keeps_torchvisions_stride(x, backbone):
    """``top_reduction=32``: the top stage at torchvision's own 1/32 (a 16x24 map for 512x768, one cell
    per φ = 32x32 block); the aggregated maps keep the paper's 1/8 and 1/4 sizes (Deconv4 upsamples 4x),
    the ImageNet weights load unchanged, and Output1 alone still equals the forward pass."""
    net = build_gmanet(backbone={"name": backbone, "top_reduction": 32}, mask_attention_depth=1).eval()
    paper = build_gmanet(backbone=backbone, mask_attention_depth=1)
    # the same tensors (names and shapes) except Deconv4's upsampling kernel, 8x8 instead of 4x4
    shapes = {k: v.shape for k, v in net.state_dict().items()}
    differing = [k for k, v in paper.state_dict().items() if shapes[k] != v.shape]
    assert shapes.keys() == paper.state_dict().keys() and differing == ["deconv4.up.weight"]
    assert net.reduction == 32 and net.backbone.feature_info[-1]["reduction"] == 32
    with torch.no_grad():
        features = net.forward_features(*x)
        out = net(*x)
        assert features["layer5"].shape[-2:] == (2, 3)  # 64x96 / 32
        assert features["deconv4"].shape[-2:] == (8, 12) and features["deconv3"].shape[-2:] == (16, 24)
        assert out["score_map"].shape == (2, 1, 2, 3)
        torch.testing.assert_close(net.output1(*x), out["output1"])


@pytest.mark.parametrize("backbone", ["mobilenet_v3_large", "efficientnet_b0"])
def test_the_mobile_trunks_at_top_reduction_32_compute_torchvisions_own_features(backbone):
    """With nothing changed but the split into stages (these two keep their own activations), the top
    features are torchvision's ``features`` output for the same weights: the stride is torchvision's."""
    reference = getattr(torchvision.models, backbone)(weights=None).eval()
    path = f"/tmp/gmaiqa_test_top32_{backbone}.pth"
    torch.save(reference.state_dict(), path)
    trunk = LIGHT_TRUNKS[backbone](weights_path=path, top_reduction=32).eval()
    image = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(trunk(image)[-1], reference.features(image), rtol=1e-4, atol=1e-5)
        # the same weights at the paper's 1/16 (dilated) keep twice the resolution: the option is what differs
        dilated = LIGHT_TRUNKS[backbone](weights_path=path).eval()(image)[-1]
    assert dilated.shape[-2:] == (4, 6)


@pytest.mark.parametrize("top", [8, 64, "32"])
def test_a_top_reduction_a_light_trunk_does_not_offer_names_the_key(top):
    with pytest.raises(ConfigError, match="model.backbone.top_reduction"):
        build_gmanet(backbone={"name": "resnet18", "top_reduction": top})


def test_only_the_light_trunks_take_a_top_reduction():
    with pytest.raises(ConfigError, match=r"model.backbone.top_reduction.*vgg16_bn trunk takes no"):
        build_gmanet(backbone={"name": "vgg16_bn", "top_reduction": 32})
    with pytest.raises(ConfigError, match="did you mean 'top_reduction'"):
        build_gmanet(backbone={"name": "resnet18", "top_reducton": 32})
