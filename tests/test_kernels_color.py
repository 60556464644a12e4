"""sRGB <-> CIE Lab matches scikit-image (which the bench measures with) on real photos."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.color import lab2rgb, rgb2lab

from skinretouch.kernels.color import lab_to_rgb, rgb_to_lab, rgb_to_lightness


@pytest.fixture(scope="module")
def portrait():
    return data.astronaut()[40:240, 120:320].astype(np.float32) / 255.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_lab_matches_skimage(portrait, dtype, order):
    image = np.asarray(portrait, dtype=dtype, order=order)
    lab = rgb_to_lab(image)
    assert lab.dtype == np.float32 and lab.shape == image.shape
    assert np.abs(lab - rgb2lab(portrait)).max() < 5e-4
    assert np.abs(rgb_to_lightness(image) - lab[:, :, 0]).max() < 1e-4


def test_round_trip_is_exact_to_a_fraction_of_a_level(portrait):
    assert np.abs(lab_to_rgb(rgb_to_lab(portrait)) - portrait).max() < 1e-5


def test_lab_to_rgb_matches_skimage_and_clips():
    rng = np.random.default_rng(0)
    lab = rgb2lab(rng.uniform(0, 1, (64, 64, 3))).astype(np.float32)
    assert np.abs(lab_to_rgb(lab) - lab2rgb(lab.astype(np.float64))).max() < 1e-5
    # A fill may overshoot the gamut a little: the result is clipped, never wrapped.
    lab[:, :, 0] += 8.0
    out = lab_to_rgb(lab)
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.abs(out - np.clip(lab2rgb(lab.astype(np.float64)), 0, 1)).max() < 1e-5


def test_extremes():
    corners = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1]]], np.float32)
    assert np.abs(rgb_to_lab(corners) - rgb2lab(corners)).max() < 5e-4
