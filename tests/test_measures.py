"""The classical focus measures: each against an independent numpy/scipy reading of its definition on a
hand-made image, every one ranks a sharp microscopy-like image above blurred copies, batches do not
mix images, CPU and GPU agree, and the registry resolves names with suggestions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import fft, ndimage

from gmaiqa.errors import GmaiqaError
from gmaiqa.focus import FOCUS_MEASURES, classical_names, get_measure
from gmaiqa.focus import pertuz as P

PERTUZ_28 = (
    "ACMO BREN CONT CURV DCTE DCTR GDER GLVA GLLV GLVN GRAE GRAT GRAS HELM HISE HISR LAPE LAPM LAPV "
    "LAPD SFIL SFRQ TENG TENV VOLA WAVS WAVV WAVR"
).split()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A hand-made 24x32 grey image: a bright disc on a ramp plus fixed noise, values in (0, 1)."""
    y, x = np.mgrid[0:24, 0:32].astype(np.float64)
    disc = ((y - 11) ** 2 + (x - 15) ** 2 < 36).astype(np.float64)
    rng = np.random.default_rng(7)
    return np.clip(0.2 + 0.01 * x + 0.5 * disc + 0.05 * rng.standard_normal((24, 32)), 0.01, 0.99)


def run(fn, img: np.ndarray, **kw) -> float:
    return float(fn(torch.from_numpy(img)[None, None], **kw)[0])


def corr(img, k):  # correlation with replicate borders, as the torch code
    return ndimage.correlate(img, np.asarray(k, dtype=np.float64), mode="nearest")


def gauss_derivatives():
    n = 7
    s = n / 2.5
    y, x = np.mgrid[-n : n + 1, -n : n + 1].astype(np.float64)
    g = np.exp(-(x**2 + y**2) / (2 * s * s)) / (2 * np.pi * s)
    gx, gy = -x * g / s**2, -y * g / s**2
    return gx / np.abs(gx).sum(), gy / np.abs(gy).sum()


def hist(img):
    levels = np.round(np.clip(img, 0, 1) * 255).astype(int)
    return np.bincount(levels.ravel(), minlength=256) / levels.size


LAP = np.array([[1, 4, 1], [4, -20, 4], [1, 4, 1]]) / 6.0
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


def local_var(img):
    m = ndimage.uniform_filter(img, 15, mode="nearest")
    return np.clip(ndimage.uniform_filter(img * img, 15, mode="nearest") - m * m, 0, None)


def dct_blocks(img):
    h, w = img.shape[0] // 8 * 8, img.shape[1] // 8 * 8
    return [fft.dctn(img[i : i + 8, j : j + 8], norm="ortho") for i in range(0, h, 8) for j in range(0, w, 8)]


def curv_reference(img):
    """Per-pixel least squares of f = p0 x + p1 y + p2 x² + p3 y² on the 3x3 neighbourhood (the published
    CURV; the MATLAB code's reused mask would fail this)."""
    padded = np.pad(img, 1, mode="edge")
    y, x = (a.ravel() for a in np.mgrid[-1:2, -1:2])
    A = np.stack([x, y, x**2, y**2], 1).astype(np.float64)
    total = 0.0
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            coef = np.linalg.lstsq(A, padded[i : i + 3, j : j + 3].ravel(), rcond=None)[0]
            total += np.abs(coef).sum()
    return total / img.size


def haar(img):
    a, b, c, d = img[0::2, 0::2], img[0::2, 1::2], img[1::2, 0::2], img[1::2, 1::2]
    return (a + b + c + d) / 2, (a + b - c - d) / 2, (a - b + c - d) / 2, (a - b - c + d) / 2


REFERENCES = {
    "ACMO": lambda f: float(
        (np.abs(np.linspace(0, 1, 256) - (hist(f) * np.linspace(0, 1, 256)).sum()) * hist(f)).sum()
    ),
    "BREN": lambda f: float(
        (np.maximum(np.abs(f[:-2, 2:] - f[:-2, :-2]), np.abs(f[2:, :-2] - f[:-2, :-2])) ** 2).mean()
    ),
    "CONT": lambda f: float(
        sum(
            np.abs(np.roll(np.roll(f, dy, 0), dx, 1) - f)[1:-1, 1:-1]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        ).mean()
    ),
    "CURV": curv_reference,
    "DCTE": lambda f: float(np.mean([((c**2).sum() - c[0, 0] ** 2) / c[0, 0] ** 2 for c in dct_blocks(f)])),
    "DCTR": lambda f: float(
        np.mean(
            [
                (c[0, 1] ** 2 + c[1, 0] ** 2 + c[1, 1] ** 2 + c[0, 2] ** 2 + c[2, 0] ** 2) / c[0, 0] ** 2
                for c in dct_blocks(f)
            ]
        )
    ),
    "GDER": lambda f: float(
        (corr(f, gauss_derivatives()[0]) ** 2 + corr(f, gauss_derivatives()[1]) ** 2).mean()
    ),
    "GLVA": lambda f: float(f.var()),
    "GLLV": lambda f: float(local_var(f).var()),
    "GLVN": lambda f: float(f.var() / f.mean()),
    "GRAE": lambda f: float(((f[:-1, 1:] - f[:-1, :-1]) ** 2 + (f[1:, :-1] - f[:-1, :-1]) ** 2).mean()),
    "GRAT": lambda f: float(
        np.maximum(np.abs(f[:-1, 1:] - f[:-1, :-1]), np.abs(f[1:, :-1] - f[:-1, :-1]))[
            np.maximum(np.abs(f[:-1, 1:] - f[:-1, :-1]), np.abs(f[1:, :-1] - f[:-1, :-1])) > 0
        ].mean()
    ),
    "GRAS": lambda f: float((np.diff(f, axis=1) ** 2).mean()),
    "HELM": lambda f: float(
        np.maximum(
            ndimage.uniform_filter(f, 15, mode="nearest") / f,
            f / ndimage.uniform_filter(f, 15, mode="nearest"),
        ).mean()
    ),
    "HISE": lambda f: float(-sum(p * math.log2(p) for p in hist(f) if p > 0)),
    "HISR": lambda f: float(f.max() - f.min()),
    "LAPE": lambda f: float((corr(f, LAP) ** 2).mean()),
    "LAPM": lambda f: float((np.abs(corr(f, [[-1, 2, -1]])) + np.abs(corr(f, [[-1], [2], [-1]]))).mean()),
    "LAPV": lambda f: float(corr(f, LAP).var()),
    "LAPD": lambda f: float(
        (
            np.abs(corr(f, [[-1, 2, -1]]))
            + np.abs(corr(f, [[-1], [2], [-1]]))
            + np.abs(corr(f, [[0, 0, -1], [0, 2, 0], [-1, 0, 0]])) / math.sqrt(2)
            + np.abs(corr(f, [[-1, 0, 0], [0, 2, 0], [0, 0, -1]])) / math.sqrt(2)
        ).mean()
    ),
    "SFIL": lambda f: float(
        np.max(
            [
                math.cos(a) * corr(f, gauss_derivatives()[0]) + math.sin(a) * corr(f, gauss_derivatives()[1])
                for a in np.deg2rad(np.arange(0, 360, 45))
            ],
            axis=0,
        ).mean()
    ),
    "SFRQ": lambda f: float(math.sqrt((np.diff(f, axis=1) ** 2).mean() + (np.diff(f, axis=0) ** 2).mean())),
    "TENG": lambda f: float((corr(f, SOBEL) ** 2 + corr(f, SOBEL.T) ** 2).mean()),
    "TENV": lambda f: float(np.sqrt(corr(f, SOBEL) ** 2 + corr(f, SOBEL.T) ** 2).var()),
    "VOLA": lambda f: float((f[:-2] * (f[1:-1] - f[2:])).mean()),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_measure_matches_an_independent_reading_of_its_definition(name, image):
    assert run(get_measure(name).fn, image) == pytest.approx(REFERENCES[name](image), rel=1e-6, abs=1e-12)


def test_wavelet_measures_by_hand_with_the_haar_wavelet(image):
    ll, lh, hl, hh = haar(image)
    assert run(P.wavs, image, low=P.HAAR_LOW) == pytest.approx(
        (np.abs(lh) + np.abs(hl) + np.abs(hh)).mean(), rel=1e-6
    )
    assert run(P.wavv, image, low=P.HAAR_LOW) == pytest.approx(lh.var() + hl.var() + hh.var(), rel=1e-6)
    detail = (lh**2).sum() + (hl**2).sum() + (hh**2).sum()
    assert run(P.wavr, image, low=P.HAAR_LOW, levels=1) == pytest.approx(detail / (ll**2).sum(), rel=1e-6)


def test_the_db6_filter_is_an_orthonormal_daubechies_filter():
    lo = np.asarray(P.DB6_LOW)
    assert lo.sum() == pytest.approx(math.sqrt(2)) and (lo**2).sum() == pytest.approx(1.0)
    assert np.dot(lo[:-2], lo[2:]) == pytest.approx(0.0, abs=1e-10)  # orthogonal to its even shifts


def microscopy_like() -> torch.Tensor:
    from gmaiqa.data.synthetic import config_from, render_group

    images, meta = render_group(
        config_from(preset="feces", groups=1, seed=3, height=192, width=256, images=(9, 9)), 0
    )
    return torch.from_numpy(images[meta["clearest"]].astype(np.float32) / 255.0).permute(2, 0, 1)


@pytest.mark.parametrize("name", list(FOCUS_MEASURES))
def test_sharp_ranks_above_increasingly_blurred_copies(name):
    from torchvision.transforms.functional import gaussian_blur

    sharp = microscopy_like()
    copies = [sharp] + [
        gaussian_blur(sharp, kernel_size=2 * math.ceil(3 * s) + 1, sigma=s) for s in (0.7, 1.5, 3.0)
    ]
    clarity = get_measure(name).clarity(torch.stack(copies))
    assert (clarity[:-1] > clarity[1:]).all(), clarity.tolist()


def test_batches_do_not_mix_images(image):
    batch = torch.from_numpy(np.stack([image, image[::-1].copy(), image * 0.5 + 0.2]))[:, None]
    for name, measure in FOCUS_MEASURES.items():
        together = measure.fn(batch)
        alone = torch.cat([measure.fn(batch[i : i + 1]) for i in range(3)])
        torch.testing.assert_close(together, alone, msg=name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cpu_and_gpu_agree():
    sharp = microscopy_like()[None]
    for name, measure in FOCUS_MEASURES.items():
        torch.testing.assert_close(
            measure(sharp.cuda()).cpu(), measure(sharp), rtol=1e-4, atol=1e-7, msg=name
        )


def test_only_a_signed_measure_falls_below_zero():
    """``signed`` says which values can be negative (a frame-by-frame fusion takes logarithms): VOLA of
    rows alternating a, b, a, ... is exactly -(a - b)^2 / 2 (each pair of rows adds a(b - a) + b(a - b));
    every other measure stays at or above 0 on that image, on flat, noisy and blurred-noise planes too."""
    a, b = 0.2, 0.8
    rows = np.where(np.arange(64)[:, None] % 2 == 0, a, b) * np.ones((64, 96))
    assert run(P.vola, rows) == pytest.approx(-((a - b) ** 2) / 2)
    rng = np.random.default_rng(3)
    noise = np.clip(0.5 + 0.05 * rng.standard_normal((64, 96)), 0, 1)
    planes = [rows, np.full((64, 96), 0.5), noise, ndimage.gaussian_filter(noise, 2.0)]
    batch = torch.from_numpy(np.stack(planes)).float()[:, None].expand(-1, 3, -1, -1)
    signed = {name for name, measure in FOCUS_MEASURES.items() if measure.signed}
    assert signed == {"VOLA"}
    for name, measure in FOCUS_MEASURES.items():
        if name not in signed:
            assert (measure(batch) >= 0).all(), name


def test_registry_holds_the_pertuz_set_and_suggests_names():
    assert set(PERTUZ_28) <= set(FOCUS_MEASURES) and "LMG" in FOCUS_MEASURES
    assert classical_names() == list(FOCUS_MEASURES)
    assert all(m.reference and m.fn.__doc__ for m in FOCUS_MEASURES.values())
    assert get_measure("lapv").name == "LAPV"
    with pytest.raises(GmaiqaError, match="did you mean .*LAPV"):
        get_measure("LAPVV")
