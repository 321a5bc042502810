"""The deep IQA baselines (§5.2): shapes, the weighted average, the FR reference trick, the gradient
stream, and a short fit + eval of each through the same framework as GMANet."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from gmaiqa.cli import main
from gmaiqa.models.iqa_baselines import TwoStreamIQA, WaDIQaM, gaussian_blur, gradient_image, to_patches
from helpers.tiny import compose_train, tiny_data


def test_patches_are_non_overlapping_32x32_in_row_major_order():
    image = torch.arange(2 * 3 * 64 * 100, dtype=torch.float32).view(2, 3, 64, 100)
    patches, per_image = to_patches(image)
    assert per_image == 2 * 3 and patches.shape == (12, 3, 32, 32)
    torch.testing.assert_close(patches[1], image[0, :, 0:32, 32:64])
    torch.testing.assert_close(patches[6 + 3], image[1, :, 32:64, 0:32])
    with pytest.raises(ValueError, match="smaller than one"):
        to_patches(torch.zeros(1, 3, 16, 64))


@pytest.mark.parametrize("full_reference", [False, True])
def test_wadiqam_image_score_is_the_weighted_average_of_patch_scores(full_reference):
    net = WaDIQaM(full_reference=full_reference).eval()
    out = net(torch.randn(2, 3, 64, 96))
    assert out["output1"].shape == (2,) and out["patch_scores"].shape == (2, 6)
    w, s = out["patch_weights"], out["patch_scores"]
    torch.testing.assert_close(out["output1"], (w * s).sum(1) / w.sum(1))
    assert (w > 0).all()
    assert out["output1"].detach().sub(50).abs().max() < 5  # starts mid-scale


def test_fr_reference_trick_blurs_with_kernel_21_sigma_3_5():
    flat = torch.full((1, 3, 40, 40), 0.7)
    torch.testing.assert_close(gaussian_blur(flat), flat)  # normalised kernel
    impulse = torch.zeros(1, 1, 41, 41)
    impulse[..., 20, 20] = 1
    response = gaussian_blur(impulse)[0, 0, 20]
    x = torch.arange(-10, 11, dtype=torch.float32)
    expected = torch.exp(-(x**2) / (2 * 3.5**2))
    torch.testing.assert_close(response[10:31] / response[20], expected / expected[10], rtol=1e-5, atol=1e-6)
    assert response[:10].abs().max() == 0 and response[31:].abs().max() == 0  # 21 taps


def test_twostream_sees_a_normalised_gradient_image():
    image = torch.rand(2, 3, 64, 64) * 5 + 3
    g = gradient_image(image)
    assert g.shape == (2, 3, 64, 64)
    torch.testing.assert_close(g.mean(dim=(1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    out = TwoStreamIQA().eval()(image)
    assert out["output1"].shape == (2,) and out["patch_scores"].shape == (2, 4)
    torch.testing.assert_close(out["output1"], out["patch_scores"].mean(1))


@pytest.mark.parametrize("model", ["wadiqam_nr", "wadiqam_fr", "twostream_iqa"])
def test_short_fit_and_eval(model, tiny_feces, tmp_path):
    from gmaiqa.train import train

    overrides = tiny_data(tiny_feces) + [
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "logger=none",
        f"paths.run_dir={tmp_path / 'run'}",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = train(compose_train(f"baseline_{model}", overrides))
    assert summary["groups"] >= 1 and 0 <= summary["acc"] <= 1
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                f"ckpt={summary['checkpoint']}",
                f"data.root={tiny_feces}",
                f"out={out}",
                "split=test",
                "accelerator=cpu",
                "num_workers=0",
            ]
        )
        == 0
    )
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["acc"] == pytest.approx(summary["acc"]) and evaluated["groups"] == summary["groups"]
