"""Lips found by colour where no face was found (a close-up of a cheek and a mouth): protected,
never taken for papules; a cluster of red papules is not lips."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from skinretouch.config import DetectConfig  # noqa: E402
from skinretouch.detection import faces as fp  # noqa: E402
from skinretouch.detection.classical import ClassicalDetector  # noqa: E402
from skinretouch.detection.lips import lips_by_colour  # noqa: E402

needs_model = pytest.mark.skipif(not fp.landmarker_available(), reason="face_landmarker.task not installed (run make)")

SKIN_LAB = (62.0, 14.0, 16.0)


def _skin(shape=(200, 260), seed=0):
    rng = np.random.default_rng(seed)
    lab = np.empty((*shape, 3), np.float32)
    for c, value in enumerate(SKIN_LAB):
        lab[..., c] = value + rng.normal(0.0, 1.2, shape)
    return lab, np.ones(shape, np.float32)


def _paint(lab, mask, dl, da, db):
    lab[mask, 0] += dl
    lab[mask, 1] += da
    lab[mask, 2] += db


def test_a_mouth_sized_red_darker_area_is_lips_and_a_papule_cluster_is_not():
    lab, skin = _skin()
    mouth = np.zeros(skin.shape, np.uint8)
    cv2.ellipse(mouth, (150, 120), (55, 18), 0, 0, 360, 1, -1)
    _paint(lab, mouth.astype(bool), -15.0, 14.0, -3.0)
    papules = np.zeros(skin.shape, np.uint8)
    for x, y in ((40, 40), (52, 46), (45, 58), (60, 35), (35, 70), (70, 60)):
        cv2.circle(papules, (x, y), 5, 1, -1)
    _paint(lab, papules.astype(bool), -8.0, 16.0, 2.0)

    lips, boxes = lips_by_colour(lab, skin, unit=1.0)

    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert abs(x + w / 2 - 150) < 4 and abs(y + h / 2 - 120) < 4
    assert lips[mouth.astype(bool)].all(), "the whole mouth, with a margin, is protected"
    assert not lips[papules.astype(bool)].any(), "a cluster of red papules is not lips"


def test_a_red_area_that_fills_the_view_is_inflamed_skin_not_lips():
    """A cystic cheek: red and darker over a third of the close-up is skin to treat."""
    lab, skin = _skin()
    patch = np.zeros(skin.shape, np.uint8)
    cv2.ellipse(patch, (130, 100), (95, 70), 0, 0, 360, 1, -1)
    _paint(lab, patch.astype(bool), -12.0, 15.0, 3.0)
    lips, boxes = lips_by_colour(lab, skin, unit=1.0)
    assert boxes == [] and not lips.any()


@needs_model
def test_the_lips_of_a_close_up_with_no_face_found_are_protected():
    """A cheek-and-mouth close-up: the landmarker finds no face (not even inside a border), so
    nothing drew the lips. Found by colour, they are protected and hold no spot pixel."""
    from skinretouch.benchmark.photoset import load_set_photos

    (photo,) = load_set_photos(["clm_audrey"]) or pytest.skip("bench photo unavailable")
    image = photo.photo.rgb.astype(np.float32) / 255.0
    (face,) = fp.find_landmark_faces(image)[:1]
    x0, y0, x1, y1 = 131, 347, 349, 482  # cheeks, nose tip, mouth and chin
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    lips = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(lips, [np.round(face.lips - (x0, y0)).astype(np.int32)], 1)
    lips = lips.astype(bool)

    detection = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(crop)

    assert not fp.find_faces(crop) and detection.method == "skin_colour"
    assert any(f.kind == "lips" for f in detection.protected)
    assert detection.protected_mask[lips].mean() > 0.9
    assert not (detection.mask & lips).any(), "spot pixels on the lips"
