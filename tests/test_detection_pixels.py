"""Issue 17: detection reads a photo's stored integers in crops (no whole-photo float copy) and
finds there what it finds in their floats."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from skinretouch.benchmark.photos import load_bench_photos
from skinretouch.benchmark.planting import plant_spots
from skinretouch.config import Config
from skinretouch.detection.pixels import as_bytes, checked_pixels, shrunk_unit_floats
from skinretouch.imageio import from_float, to_float, unit_floats
from skinretouch.pipeline import OwnedPhoto, Retoucher
from skinretouch.precompile import synthetic_skin


@pytest.fixture(scope="module")
def retoucher():
    with Retoucher(Config()) as shared:
        yield shared


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", [(211, 157), (90, 120), (640, 480)])
def test_stored_integers_shrink_to_the_floats_of_their_floats_shrunk(dtype, size):
    """The working grid made from bytes or 16-bit values is, to 1e-5, the one made from the
    floats of the same pixels (bytes averaged as bytes would be off by up to half a level)."""
    top = np.iinfo(dtype).max
    pixels = np.random.default_rng(3).integers(0, top + 1, (480, 640, 3)).astype(dtype)
    from_floats = cv2.resize(to_float(pixels), size, interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk_unit_floats(pixels, size) - from_floats).max() < 1e-5
    assert np.array_equal(shrunk_unit_floats(to_float(pixels), size), from_floats)


def test_unit_floats_and_bytes_are_the_stored_values():
    rng = np.random.default_rng(4)
    bytes_ = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    wide = rng.integers(0, 65536, (20, 30, 3)).astype(np.uint16)
    floats = to_float(bytes_)
    assert unit_floats(floats) is floats  # no copy of a float photo's crop
    assert np.array_equal(unit_floats(bytes_), floats)
    assert as_bytes(bytes_) is bytes_
    assert np.array_equal(as_bytes(floats), bytes_)
    assert np.array_equal(as_bytes(wide), from_float(to_float(wide), 8))
    assert checked_pixels(bytes_).dtype == np.uint8 and checked_pixels(wide).dtype == np.uint16
    assert checked_pixels(bytes_.astype(np.float64) / 255).dtype == np.float32
    with pytest.raises(ValueError, match="RGB"):
        checked_pixels(bytes_[..., 0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_skin_close_up_gives_the_same_spots_from_its_bytes_as_from_its_floats(retoucher, seed):
    """No face to parse: every step reads the same values, so the same spots come out."""
    rgb, _, _ = synthetic_skin(seed=seed)
    stored = from_float(rgb, 8)
    from_bytes = retoucher.detector.detect(stored)
    from_floats = retoucher.detector.detect(to_float(stored))
    assert len(from_bytes.spots) >= 3
    assert [(s.label, s.kind) for s in from_bytes.spots] == [(s.label, s.kind) for s in from_floats.spots]
    assert np.array_equal(from_bytes.labels, from_floats.labels)
    assert np.array_equal(from_bytes.protected_mask, from_floats.protected_mask)


def test_a_portrait_handed_over_as_bytes_finds_its_planted_spots_as_its_floats_do(retoucher):
    """With a face, the landmarks are found on a preview shrunk from the bytes rather than
    from the floats (rounded apart by at most one level here and there), so the outlines may
    differ by a pixel; the spots found must not."""
    photo = load_bench_photos(names=["grace_hopper"])[0]
    blemished, spots = plant_spots(photo, seed=5, n_moles=0)
    stored = from_float(np.clip(blemished, 0, 1).astype(np.float32), 8)
    by_bytes = retoucher.retouch(OwnedPhoto(stored.copy(), 8))
    by_floats = retoucher.retouch(to_float(stored))
    found = []
    for result in (by_bytes, by_floats):
        mask = np.asarray(result.applied_mask, bool)
        found.append([bool(mask[s.core].mean() >= 0.5) for s in spots])  # the bench's rule
    assert sum(found[0]) >= 0.8 * len(spots)
    assert found[0] == found[1]
    assert by_bytes.original.dtype == np.uint8 and np.array_equal(by_bytes.original, stored)


def test_a_photo_handed_over_as_bytes_is_retouched_without_a_float_copy_of_it(retoucher):
    """The file stage hands the decoded bytes over: detection and repair read crops, so a
    retouch allocates most of a float copy of the photo (4 bytes a channel) less than one
    that starts from floats, as the stage did before (3 MP portrait: 36 MB against 82 MB)."""
    photo = load_bench_photos(names=["grace_hopper"])[0]
    blemished, _ = plant_spots(photo, seed=5, n_moles=0)
    stored = cv2.resize(from_float(np.clip(blemished, 0, 1).astype(np.float32), 8), (1536, 2048),
                        interpolation=cv2.INTER_CUBIC)  # fmt: skip
    float_copy_bytes = stored.size * 4

    def peak_of(run) -> int:
        tracemalloc.start()
        try:
            run()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    handed_over = peak_of(lambda: retoucher.retouch(OwnedPhoto(stored.copy(), 8)))
    from_floats = peak_of(lambda: retoucher.retouch(to_float(stored)))
    assert from_floats > float_copy_bytes  # the measure sees numpy's arrays
    assert handed_over < from_floats - 0.8 * float_copy_bytes


def test_a_user_mask_on_handed_over_bytes_gives_the_floats_patches_to_the_bit(retoucher):
    rgb, small, large = synthetic_skin(seed=1)
    stored = from_float(rgb, 8)
    mask = small | large
    by_bytes = retoucher.retouch(OwnedPhoto(stored.copy(), 8), mask=mask)
    by_floats = retoucher.retouch(to_float(stored), mask=mask)
    assert len(by_bytes.patches) == len(by_floats.patches) >= 2
    for a, b in zip(by_bytes.patches, by_floats.patches):
        assert a.window == b.window and np.array_equal(a.hole, b.hole) and np.array_equal(a.values, b.values)
