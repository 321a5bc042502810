"""Whole-image scoring of GMANet §3.4 / §5.3.1: the sliding window, Output1-only inference, the
single-pass mode and its tiling, precision and memory-format options."""

import warnings
from dataclasses import replace

import pytest
import torch

from gmaiqa.errors import ConfigError
from gmaiqa.inference import (
    DEFAULT_MAX_PIXELS,
    InferenceSettings,
    extract_patches,
    halo_of,
    predict_scores,
    tile_spans,
    tiled_score_map,
    window_starts,
)
from gmaiqa.models import build_gmanet

warnings.filterwarnings("ignore", message=".*random init.*")


def test_paper_layout_is_12_patches():
    assert window_starts(1024, 512, 256) == [0, 256, 512]
    assert window_starts(1536, 768, 256) == [0, 256, 512, 768]
    patches = extract_patches(torch.zeros(1, 3, 1024, 1536), (512, 768), (256, 256))
    assert patches.shape == (1, 12, 3, 512, 768)
    assert InferenceSettings() == InferenceSettings.from_mapping({})
    assert DEFAULT_MAX_PIXELS == 12 * 512 * 768  # one pass holds the 12 windows, as before


def test_last_window_is_flush_with_the_border_and_too_large_patches_fail():
    assert window_starts(1000, 512, 384) == [0, 384, 488]
    with pytest.raises(ConfigError, match="does not fit"):
        window_starts(400, 512, 256)


class PatchMean(torch.nn.Module):
    """A stand-in network whose Output1 is the mean of the patch (+ the map's mean); counts its passes."""

    def __init__(self):
        super().__init__()
        self.batch_sizes = []

    def forward(self, image, attention=None):
        self.batch_sizes.append(image.shape[0])
        out = image.mean(dim=(1, 2, 3))
        if attention is not None:
            out = out + attention.mean(dim=(1, 2, 3))
        return {"output1": out}


def test_image_score_is_the_mean_of_patch_scores_and_batching_bounds_each_pass():
    g = torch.Generator().manual_seed(0)
    image, amap = torch.rand(3, 3, 16, 24, generator=g), torch.rand(3, 1, 16, 24, generator=g)
    expected = torch.stack(
        [
            torch.stack(
                [
                    image[i, :, t : t + 8, c : c + 12].mean() + amap[i, :, t : t + 8, c : c + 12].mean()
                    for t in (0, 4, 8)
                    for c in (0, 4, 8, 12)
                ]
            ).mean()
            for i in range(3)
        ]
    )
    for windows_per_pass in (1, 5, 12, 100):
        net = PatchMean()
        settings = InferenceSettings(patch=(8, 12), step=(4, 4), max_pixels=windows_per_pass * 8 * 12)
        torch.testing.assert_close(predict_scores(net, image, amap, settings), expected)
        # the windows of all three images are batched together, up to the bound
        assert max(net.batch_sizes) == min(windows_per_pass, 36) and sum(net.batch_sizes) == 36
    whole = InferenceSettings(mode="full", max_pixels=2 * 16 * 24)
    net = PatchMean()
    torch.testing.assert_close(predict_scores(net, image, None, whole), image.mean(dim=(1, 2, 3)))
    assert net.batch_sizes == [2, 1]  # whole images, two per pass


@pytest.fixture(scope="module")
def gmanet():
    torch.manual_seed(0)
    return build_gmanet(mask_attention_depth=1, head_channels=32, aggregation_channels=32).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 96, 144, generator=g), torch.rand(2, 1, 96, 144, generator=g)


class FullForwardOnly(torch.nn.Module):
    """The network as scored before Output1-only inference: the whole forward pass, aux outputs too."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image, attention=None):
        return self.net(image, attention)


def test_output1_only_scores_equal_the_full_forward_pass_on_the_sliding_window(gmanet, images):
    settings = InferenceSettings(patch=(64, 96), step=(32, 48))
    with torch.no_grad():
        assert "output2" in gmanet(*images)  # the model does have auxiliary outputs to skip
        torch.testing.assert_close(gmanet.output1(*images), gmanet(*images)["output1"])
    torch.testing.assert_close(
        predict_scores(gmanet, *images, settings), predict_scores(FullForwardOnly(gmanet), *images, settings)
    )


def test_full_mode_equals_window_mode_when_the_image_is_one_window(gmanet, images):
    one_window = InferenceSettings(patch=(96, 144), step=(96, 144))
    full = InferenceSettings(mode="full")
    torch.testing.assert_close(
        predict_scores(gmanet, *images, full), predict_scores(gmanet, *images, one_window)
    )
    # and differs from the mean over smaller windows (the weighting and borders of the module docstring)
    windows = predict_scores(gmanet, *images, InferenceSettings(patch=(64, 96), step=(32, 48)))
    assert not torch.allclose(windows, predict_scores(gmanet, *images, full))


def test_tile_spans_cover_the_axis_once_with_context():
    spans = tile_spans(300, 128, 32)
    assert [(s[2], s[3]) for s in spans] == [(0, 128), (128, 256), (256, 300)]
    assert spans[1][:2] == (96, 288) and spans[0][0] == 0 and spans[-1][1] == 300


def test_tiled_score_map_equals_the_one_pass_map_when_images_exceed_max_pixels(gmanet):
    g = torch.Generator().manual_seed(2)
    image, amap = torch.randn(1, 3, 288, 400, generator=g), torch.rand(1, 1, 288, 400, generator=g)
    # VGG16-BN Layer5 sees 196 px: its 98 px radius on the 16 px grid, plus a cell
    assert halo_of(gmanet, InferenceSettings()) == 128
    settings = InferenceSettings(mode="full", max_pixels=352 * 352)  # cores of 96 px: 3 x 5 tiles
    with torch.no_grad():
        whole = gmanet.output1_map(image, amap)
        tiled = tiled_score_map(gmanet, image, amap, settings)
    assert tiled.shape == whole.shape == (1, 1, 18, 25)
    torch.testing.assert_close(tiled, whole, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(
        predict_scores(gmanet, image, amap, settings), gmanet.output1(image, amap), rtol=1e-5, atol=1e-4
    )
    # a halo smaller than the receptive field is visibly wrong: the test can fail
    with torch.no_grad():
        short = tiled_score_map(
            gmanet, image, amap, InferenceSettings(mode="full", max_pixels=352 * 352, halo=16)
        )
    assert not torch.allclose(short, whole, rtol=1e-4, atol=1e-3)


def test_a_bound_too_small_for_the_halo_is_a_config_error(gmanet, images):
    with pytest.raises(ConfigError, match="inference.max_pixels"):
        predict_scores(gmanet, *images, InferenceSettings(mode="full", max_pixels=90 * 90))


def test_channels_last_and_bf16_autocast_stay_close_to_fp32(gmanet, images):
    settings = InferenceSettings(patch=(64, 96), step=(32, 48), channels_last=False)
    fp32 = predict_scores(gmanet, *images, settings)
    net = gmanet.to(memory_format=torch.channels_last)
    try:
        last = predict_scores(net, *images, replace(settings, channels_last=True))
        bf16 = predict_scores(gmanet, *images, replace(settings, precision="bf16"))
    finally:
        gmanet.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(last, fp32, rtol=1e-4, atol=1e-3)
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16, fp32, rtol=3e-2, atol=0.5)


def test_settings_check_their_keys_and_read_the_old_window_bound():
    with pytest.raises(ConfigError, match="inference.mode"):
        InferenceSettings.from_mapping({"mode": "tiles"})
    with pytest.raises(ConfigError, match="inference.precision"):
        InferenceSettings.from_mapping({"precision": "int8"})
    with pytest.warns(FutureWarning, match="inference.max_pixels"):
        old = InferenceSettings.from_mapping({"patch": [96, 144], "max_patches": 40})
    assert old.max_pixels == 40 * 96 * 144
    recorded = InferenceSettings(patch=(96, 144), step=(96, 144))
    assert InferenceSettings.from_mapping(recorded.record()) == recorded
    command = recorded.overridden({"mode": "full", "patch": None, "precision": "bf16"})
    assert (command.mode, command.patch, command.precision) == ("full", (96, 144), "bf16")


@pytest.mark.parametrize("trunk", ["vgg16_bn", "mobilenet_v3_large"])
def test_prepare_model_folds_batch_norm_and_scores_as_before(trunk):
    from gmaiqa.inference import prepare_model
    from gmaiqa.models.mask_attention import MaskAttentionConv

    torch.manual_seed(0)
    net = build_gmanet(backbone=trunk, mask_attention_depth=1, aux_outputs=False)
    g = torch.Generator().manual_seed(3)
    image, amap = torch.randn(2, 3, 64, 96, generator=g), torch.rand(2, 1, 64, 96, generator=g)
    batch_norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in batch_norms:
        bn.momentum = None  # running statistics of the batch below, so eval-mode features do not vanish
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    with torch.no_grad():
        net.train()(torch.randn(4, 3, 64, 96, generator=g), torch.rand(4, 1, 64, 96, generator=g))
    net.eval()
    settings = InferenceSettings(mode="full", channels_last=False)
    with torch.no_grad():
        before = predict_scores(net, image, amap, settings)
        folded = prepare_model(net, settings, torch.device("cpu"))
        after = predict_scores(folded, image, amap, settings)
    masked = [m for m in folded.modules() if isinstance(m, MaskAttentionConv)]
    assert masked and not any(isinstance(m.bn, torch.nn.BatchNorm2d) for m in masked)
    # the model given keeps its BatchNorms (export saves its state after scoring with the copy)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == len(batch_norms)
    assert not torch.equal(before, torch.full_like(before, before[0]))  # the scores tell images apart
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-3)


def test_tiles_follow_a_32_px_grid_when_the_trunk_keeps_its_own_last_stride():
    """``model.backbone.top_reduction=32``: one score cell per 32 px, and tiled whole-image scoring still
    reproduces the one-pass map (ResNet-18: no squeeze-excitation, so exactly)."""
    torch.manual_seed(0)
    net = build_gmanet(
        backbone={"name": "resnet18", "top_reduction": 32},
        mask_attention_depth=1,
        head_channels=32,
        aggregation_channels=32,
    ).eval()
    g = torch.Generator().manual_seed(2)
    image, amap = torch.randn(1, 3, 704, 960, generator=g), torch.rand(1, 1, 704, 960, generator=g)
    assert net.reduction == 32 and halo_of(net, InferenceSettings()) % 32 == 0
    settings = InferenceSettings(mode="full", max_pixels=576 * 576)
    with torch.no_grad():
        whole = net.output1_map(image, amap)
        tiled = tiled_score_map(net, image, amap, settings)
    assert whole.shape == (1, 1, 22, 30) and whole.std() > 0.1  # a map that tells places apart
    torch.testing.assert_close(tiled, whole, rtol=1e-4, atol=1e-3)
