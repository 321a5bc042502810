"""Gradient maps of GMANet §3.1 (Eq. 1-6), Tenengrad and z-score (§3.4) on hand-made images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gmaiqa.focus.gradient import (
    attention_map,
    local_max_gradient_blocks,
    local_max_gradient_map,
    patch_gradient,
    tenengrad_map,
    to_gray,
    zscore,
)


def test_patch_gradient_matches_equations_1_to_5_by_hand():
    f = torch.tensor([[1.0, 4.0], [2.0, 8.0]])
    # g1=|4-1|=3, g2=|2-1|=1, g3=|8-2|=6, g4=|8-4|=4 -> (3+1+6+4)/4 = 3.5
    assert patch_gradient(f[None, None]).item() == pytest.approx(3.5)


def test_patch_gradient_of_a_step_edge():
    f = torch.zeros(1, 1, 5, 6)
    f[..., :, 3:] = 2.0  # vertical edge between columns 2 and 3
    g = patch_gradient(f)[0, 0]
    assert g.shape == (4, 5)
    # only patches straddling the edge respond: g1 = g3 = 2, g2 = g4 = 0 -> 1.0
    expected = torch.zeros(4, 5)
    expected[:, 2] = 1.0
    torch.testing.assert_close(g, expected)


def _numpy_blocks(f: np.ndarray, h: int, w: int, sv: int, sh: int) -> np.ndarray:
    g = (
        np.abs(f[:-1, 1:] - f[:-1, :-1])
        + np.abs(f[1:, :-1] - f[:-1, :-1])
        + np.abs(f[1:, 1:] - f[1:, :-1])
        + np.abs(f[1:, 1:] - f[:-1, 1:])
    ) / 4
    rows = (f.shape[0] - h) // sv + 1
    cols = (f.shape[1] - w) // sh + 1
    out = np.zeros((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = g[i * sv : i * sv + h - 1, j * sh : j * sh + w - 1].max()
    return out


@pytest.mark.parametrize("block,stride", [((4, 4), (4, 4)), ((8, 6), (3, 2)), ((5, 7), (1, 1))])
def test_block_map_equals_direct_definition(block, stride):
    f = np.random.default_rng(0).random((23, 31)).astype(np.float32)
    got = local_max_gradient_blocks(torch.from_numpy(f)[None, None], block, stride)[0, 0].numpy()
    np.testing.assert_allclose(got, _numpy_blocks(f, *block, *stride), rtol=1e-6)


def test_full_size_map_is_centred_block_max():
    f = np.random.default_rng(1).random((20, 24)).astype(np.float32)
    h = w = 6
    got = local_max_gradient_map(torch.from_numpy(f)[None, None], (h, w))[0, 0].numpy()
    assert got.shape == f.shape
    g = np.pad(patch_gradient(torch.from_numpy(f)[None, None])[0, 0].numpy(), ((2, 3), (2, 3)))
    for y, x in [(0, 0), (7, 11), (19, 23), (10, 0)]:
        assert got[y, x] == pytest.approx(g[y : y + h - 1, x : x + w - 1].max())


def test_a_single_sharp_spot_lights_its_whole_block():
    f = torch.zeros(1, 1, 64, 64)
    f[..., 30, 30] = 1.0
    m = local_max_gradient_map(f, (32, 32))[0, 0]
    # a flat object interior near a sharp feature responds (what §3.1 wants), far away does not
    assert m[20, 20] > 0 and m[40, 40] > 0
    assert m[0, 0] == 0 and m[63, 63] == 0


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(3 * sigma) + 1
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.transpose(-1, -2))


@pytest.fixture(scope="module")
def specimen():
    from gmaiqa.data.synthetic import SynthConfig, render_group

    images, meta = render_group(
        SynthConfig(preset="blood", height=128, width=160, images=(5, 5), object_scale=0.5), 0
    )
    return torch.from_numpy(images[meta["clearest"]]).permute(2, 0, 1)[None].float() / 255


def test_sharper_image_gives_higher_maps(specimen):
    values = []
    for sigma in (0, 1, 2, 4):
        gray = to_gray(specimen)  # no per-image z-score: contrast loss is the signal here
        gray = gray if sigma == 0 else _blur(gray, sigma)
        values.append(
            (local_max_gradient_map(gray, (16, 16)).mean().item(), tenengrad_map(gray).mean().item())
        )
    lmg, teng = zip(*values)
    assert list(lmg) == sorted(lmg, reverse=True)
    assert list(teng) == sorted(teng, reverse=True)


def test_zscore_removes_brightness_and_contrast(specimen):
    a = attention_map(specimen)
    b = attention_map(0.4 * specimen + 0.3)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    z = zscore(specimen)
    torch.testing.assert_close(z.mean(dim=(2, 3)), torch.zeros(1, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=(2, 3), unbiased=False), torch.ones(1, 3), atol=1e-4, rtol=0)


def test_zscore_of_a_flat_image_is_zero_not_nan():
    assert torch.equal(zscore(torch.full((1, 1, 8, 8), 0.5)), torch.zeros(1, 1, 8, 8))


def test_tenengrad_known_value():
    f = torch.zeros(1, 1, 5, 5)
    f[..., 2:] = 1.0  # columns 2.. bright
    gx = tenengrad_map(f)[0, 0]
    # Sobel x across a unit step: 1 + 2 + 1 = 4 on both columns next to the edge
    assert gx[2, 1].item() == pytest.approx(4.0) and gx[2, 2].item() == pytest.approx(4.0)
    assert gx[2, 4].item() == 0


def test_maps_are_batched_and_per_image():
    x = torch.rand(3, 3, 40, 48)
    batched = attention_map(x, block=(8, 8))
    single = torch.cat([attention_map(x[i : i + 1], block=(8, 8)) for i in range(3)])
    torch.testing.assert_close(batched, single)
    assert attention_map(x, "tenengrad").shape == (3, 1, 40, 48)
    with pytest.raises(ValueError, match="unknown attention map"):
        attention_map(x, "sobel")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cpu_and_gpu_agree():
    x = torch.rand(2, 3, 64, 96)
    for kind in ("local_max", "tenengrad"):
        torch.testing.assert_close(
            attention_map(x, kind).cuda(), attention_map(x.cuda(), kind), atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("size", [1, 2, 3, 5, 16, 17, 31, 32, 40])
def test_sliding_max_by_doubling_equals_max_pooling(size):
    """The attention map's stride-1 block max takes log2(size) + 1 maxima instead of a max pooling; it
    must give max pooling's numbers exactly, NaN included, along either axis."""
    from gmaiqa.focus.gradient import sliding_max

    g = torch.rand(2, 1, 41, 45, generator=torch.Generator().manual_seed(size))
    g[0, 0, 7, 9] = float("nan")
    rows = F.max_pool2d(g, kernel_size=(size, 1), stride=1)
    columns = F.max_pool2d(g, kernel_size=(1, size), stride=1)
    torch.testing.assert_close(sliding_max(g, size, -2), rows, equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(sliding_max(g, size, -1), columns, equal_nan=True, rtol=0, atol=0)
    with pytest.raises(ValueError, match="window of 46 entries"):
        sliding_max(g, 46, -1)
