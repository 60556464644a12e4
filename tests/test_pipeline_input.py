"""What the Python API accepts as a photo: floats in [0, 1], or stored integers."""

from __future__ import annotations

import numpy as np
import pytest

from skinretouch.config import Config
from skinretouch.imageio import to_float
from skinretouch.pipeline import OwnedPhoto, Retoucher


def _skin(dtype: type, side: int = 96) -> np.ndarray:
    """Skin-toned texture with a dark blemish in the middle, as stored integers of ``dtype``."""
    rng = np.random.default_rng(7)
    base = np.float32([0.78, 0.58, 0.48]) + rng.normal(0.0, 0.015, (side, side, 3)).astype(np.float32)
    yy, xx = np.ogrid[:side, :side]
    base[(yy - side // 2) ** 2 + (xx - side // 2) ** 2 <= 16] *= 0.6
    top = np.iinfo(dtype).max
    return np.clip(np.rint(base * top), 0, top).astype(dtype)


def _spot_mask(side: int = 96) -> np.ndarray:
    yy, xx = np.ogrid[:side, :side]
    return (yy - side // 2) ** 2 + (xx - side // 2) ** 2 <= 36


@pytest.fixture(scope="module")
def retoucher():
    with Retoucher(Config()) as retoucher:
        yield retoucher


@pytest.mark.parametrize("dtype, bit_depth", [(np.uint8, 8), (np.uint16, 16)])
def test_stored_integers_are_retouched_as_that_bit_depth_and_the_callers_array_is_left_alone(
    retoucher, dtype, bit_depth
):
    photo = _skin(dtype)
    before = photo.copy()
    mask = _spot_mask()

    given = retoucher.retouch(photo, mask=mask)
    handed_over = retoucher.retouch(OwnedPhoto(photo.copy(), bit_depth), mask=mask)

    np.testing.assert_array_equal(photo, before)
    assert given.original.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(given.apply_to(photo), handed_over.apply_to(photo))
    retouched = given.apply_to(photo)
    assert (retouched != photo)[mask].mean() > 0.5  # the blemish was filled
    np.testing.assert_array_equal(retouched[~mask], photo[~mask])
    # The fill is of skin, not of a photo read 255 (or 65535) times too bright.
    assert abs(float(to_float(retouched)[mask].mean()) - float(to_float(photo)[~mask].mean())) < 0.05


@pytest.mark.parametrize("values, hint", [(255.0, "uint8"), (-0.5, "[0, 1]"), (np.nan, "[0, 1]")])
def test_floats_outside_zero_to_one_are_refused_with_the_range_named(retoucher, values, hint):
    photo = np.full((32, 32, 3), 0.5, np.float32)
    photo[4, 4] = values
    with pytest.raises(ValueError, match=r"\[0, 1\]") as raised:
        retoucher.retouch(photo)
    assert hint in str(raised.value)


def test_floats_in_range_are_retouched_as_before(retoucher):
    photo = to_float(_skin(np.uint8))
    result = retoucher.retouch(photo, mask=_spot_mask())
    assert result.original.dtype == np.float32
    assert 0.0 <= float(result.pixels.min()) and float(result.pixels.max()) <= 1.0


@pytest.mark.parametrize("shape", [(48, 96), (96, 96, 3), (96,)])
def test_a_mask_not_the_images_shape_is_refused_naming_both(retoucher, shape):
    with pytest.raises(ValueError, match=r"mask must be \(H, W\) = \(96, 96\)") as raised:
        retoucher.retouch(_skin(np.uint8), mask=np.ones(shape, bool))
    assert str(shape) in str(raised.value)


@pytest.mark.parametrize("orientation", [0, 9, 6.5])
def test_an_orientation_outside_exifs_eight_is_refused(retoucher, orientation):
    with pytest.raises(ValueError, match="orientation must be an EXIF orientation, 1 to 8"):
        retoucher.retouch(_skin(np.uint8), orientation=orientation)
