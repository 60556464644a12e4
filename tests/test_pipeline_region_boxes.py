"""Regions found on boxes around the spots are the whole-image ones.

`build_regions` (and `detection_from_mask`) work on boxes around the spots instead of the
whole photo, for speed; these tests hold them to the plain whole-image results: same
labels, same regions in the same order, same flags and routes.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinretouch.config import Config
from skinretouch.regions import build_regions, build_regions_whole_image, detection_from_mask


def _random_mask(rng, height, width):
    mask = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(1, 30))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(mask, center, int(rng.integers(0, 12)), 1, -1)
    mask |= (rng.random((height, width)) < 0.001).astype(np.uint8)  # single pixels too
    return mask.astype(bool)


def _summary(regions):
    return [
        (r.id, r.bbox, r.size, r.route, tuple(r.hard_reasons), r.kind, r.hole.tobytes())
        for r in regions
    ]


@pytest.mark.parametrize("trial", range(12))
def test_regions_on_boxes_equal_the_whole_image_ones(trial):
    rng = np.random.default_rng(trial)
    height, width = (int(v) for v in rng.integers(40, 400, 2))
    mask = _random_mask(rng, height, width)
    detection = detection_from_mask(mask)
    expected = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[1]
    assert np.array_equal(detection.labels, expected)
    if trial % 2:
        detection.protected_mask[int(rng.integers(0, height)) :, : int(rng.integers(0, width))] = True
    route = Config().route
    for dilation_px in (0, 1, 4):
        whole = build_regions_whole_image(detection, dilation_px=dilation_px, route=route)
        boxed = build_regions(detection, dilation_px=dilation_px, route=route)
        assert _summary(boxed) == _summary(whole)


def test_large_and_edge_regions_keep_their_flags():
    mask = np.zeros((300, 260), bool)
    mask[:30, 5:40] = True  # image edge
    mask[100:140, -20:] = True  # image edge, large
    mask[150:290, 60:200] = True  # large area
    detection = detection_from_mask(mask)
    boxed = build_regions(detection, dilation_px=0, route=Config().route)
    whole = build_regions_whole_image(detection, dilation_px=0, route=Config().route)
    assert _summary(boxed) == _summary(whole)
    assert any("large_area" in r.hard_reasons for r in boxed)
    assert sum("touches_image_edge" in r.hard_reasons for r in boxed) == 2


def test_empty_mask_gives_no_region():
    detection = detection_from_mask(np.zeros((50, 60), bool))
    assert detection.labels.shape == (50, 60) and not detection.labels.any()
    assert build_regions(detection, dilation_px=3, route=Config().route) == []
