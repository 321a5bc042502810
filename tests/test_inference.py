"""Sliding-window scoring of GMANet §3.4 / §5.3.1."""

import pytest
import torch

from gmaiqa.inference import extract_patches, predict_scores, window_starts


def test_paper_layout_is_12_patches():
    assert window_starts(1024, 512, 256) == [0, 256, 512]
    assert window_starts(1536, 768, 256) == [0, 256, 512, 768]
    patches = extract_patches(torch.zeros(1, 3, 1024, 1536), (512, 768), (256, 256))
    assert patches.shape == (1, 12, 3, 512, 768)


def test_last_window_is_flush_with_the_border_and_too_large_patches_fail():
    assert window_starts(1000, 512, 384) == [0, 384, 488]
    with pytest.raises(ValueError, match="does not fit"):
        window_starts(400, 512, 256)


class PatchMean(torch.nn.Module):
    """A stand-in network whose Output1 is the mean of the patch (+ the map's mean)."""

    def forward(self, image, attention=None):
        out = image.mean(dim=(1, 2, 3))
        if attention is not None:
            out = out + attention.mean(dim=(1, 2, 3))
        return {"output1": out}


def test_image_score_is_the_mean_of_patch_scores_and_chunking_does_not_matter():
    g = torch.Generator().manual_seed(0)
    image, amap = torch.rand(3, 3, 16, 24, generator=g), torch.rand(3, 1, 16, 24, generator=g)
    net = PatchMean()
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
    for chunk in (1, 5, 12, 100):
        got = predict_scores(net, image, amap, patch=(8, 12), step=(4, 4), max_patches=chunk)
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(predict_scores(net, image, None, patch=None), image.mean(dim=(1, 2, 3)))
