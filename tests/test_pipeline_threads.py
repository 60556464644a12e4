"""The region threads change the time a photo takes, never its pixels or its report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from skinretouch.benchmark.photos import load_bench_photos
from skinretouch.benchmark.planting import oracle_mask, plant_spots
from skinretouch.config import Config
from skinretouch.imageio import from_float, to_float
from skinretouch.pipeline import OwnedPhoto, Retoucher


@pytest.fixture(scope="module")
def blemished():
    photo = load_bench_photos(names=["grace_hopper"])[0]
    image, spots = plant_spots(photo, seed=2)
    image = (np.rint(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)
    return image, oracle_mask(spots, image.shape, dilation_px=1)


def _retouch(image, mask, threads):
    config = Config()
    config = dataclasses.replace(config, removal=dataclasses.replace(config.removal, threads=threads))
    with Retoucher(config) as retoucher:
        result = retoucher.retouch(image, mask=mask)
        return result.pixels, [(r.id, r.route, r.texture_ratio, r.hard_reasons) for r in result.regions]


@pytest.mark.parametrize("use_mask", [True, False], ids=["user-mask", "detected"])
def test_one_two_and_three_threads_give_the_same_photo_and_report(blemished, use_mask):
    image, mask = blemished
    mask = mask if use_mask else None
    pixels, records = _retouch(image, mask, threads=1)
    assert len(records) >= 3
    assert not np.array_equal(pixels, image)
    for threads in (2, 3):
        other_pixels, other_records = _retouch(image, mask, threads=threads)
        assert np.array_equal(other_pixels, pixels)
        assert other_records == records


def test_a_warm_up_running_beside_the_first_photo_changes_nothing(blemished):
    """``process`` warms the kernels and the face model on a thread while the first photo is
    read and its faces are found: that photo comes out exactly as without it, and closing the
    pipeline waits for the warm-up (it may still use the threads and engines being freed)."""
    image, _ = blemished
    with Retoucher(Config()) as retoucher:
        plain = retoucher.retouch(image)
    retoucher = Retoucher(Config())
    warming = retoucher.warm_up_in_background()
    beside = retoucher.retouch(image)
    retoucher.close()
    assert not warming.is_alive()
    assert np.array_equal(beside.pixels, plain.pixels)
    assert [(r.id, r.bbox, r.route) for r in beside.regions] == [(r.id, r.bbox, r.route) for r in plain.regions]


def test_the_warm_up_thread_leaves_a_one_thread_detector_alone():
    """A plug-in detector that may serve one thread at a time (no ``thread_safe``) is never
    called from the warm-up thread: only the removal kernels warm up beside the photo."""
    import threading

    from skinretouch.detection.types import Detection

    callers = []

    class OneThreadDetector:
        name = "one-thread"

        def detect(self, image, *, orientation=1):
            callers.append(threading.current_thread().name)
            h, w = image.shape[:2]
            return Detection(labels=np.zeros((h, w), np.int32), spots=[], protected_mask=np.zeros((h, w), bool))

    retoucher = Retoucher(Config())
    retoucher.detector = OneThreadDetector()
    retoucher.warm_up_in_background()
    retoucher.retouch(np.full((64, 64, 3), 0.6, np.float32))
    retoucher.close()
    assert callers == [threading.current_thread().name]


@pytest.mark.parametrize("use_mask", [True, False], ids=["user-mask", "detected"])
def test_a_handed_over_photo_gives_the_same_patches(blemished, use_mask):
    """The file stage hands its float photo over (OwnedPhoto): the repair then reads the
    stored bytes made over the floats' memory, and every patch is the same to the bit."""
    image, mask = blemished
    image = to_float(from_float(image, 8))  # a decoded photo's floats (the fixture's differ in the last bit)
    mask = mask if use_mask else None
    with Retoucher(Config()) as retoucher:
        plain = retoucher.retouch(image, mask=mask)
        owned = retoucher.retouch(OwnedPhoto(image.copy(), 8), mask=mask)
    assert owned.original.dtype == np.uint8 and np.array_equal(owned.original, from_float(image, 8))
    assert len(owned.patches) == len(plain.patches) >= 3
    for a, b in zip(owned.patches, plain.patches):
        assert a.window == b.window and np.array_equal(a.hole, b.hole) and np.array_equal(a.values, b.values)
    assert np.array_equal(owned.pixels, plain.pixels)
