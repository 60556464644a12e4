"""Real moles and beauty marks are left alone, at sizes where a rule for larger blackheads
would take them (issue 13: "moles hit 0 at every size")."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from skinretouch.config import Config  # noqa: E402
from skinretouch.pipeline import Retoucher  # noqa: E402

photoset = pytest.importorskip("skinretouch.benchmark.photoset")

# facetorch_curls (a bench test photo, nothing planted): a round black beauty mark on the cheek
# beside the mouth, centre (row, column) and radius in pixels (L* about 3 against the skin's 64;
# 4.2 face units at the photo's scale of 1.33, larger than a blackhead's plug may be).
BEAUTY_MARK = (798, 576)
BEAUTY_MARK_RADIUS_PX = 6


def test_a_black_beauty_mark_beside_the_mouth_is_left_alone():
    """A grey-plug rule for blackheads larger than ``blackhead_max_r`` (wave 14) took this mark:
    black as a plug and domed in its profile, only its size says mole. Nothing of it may be in
    the applied mask, and its pixels come out unchanged."""
    (photo,) = photoset.load_set_photos(["facetorch_curls"]) or pytest.skip("bench photo unavailable")
    image = photo.photo.rgb.astype(np.float32) / 255.0
    cy, cx = BEAUTY_MARK
    r = BEAUTY_MARK_RADIUS_PX
    yy, xx = np.ogrid[: image.shape[0], : image.shape[1]]
    mark = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    core = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
    assert image[core].mean() < 0.1, "the mark is not where this test expects it"

    with Retoucher(Config()) as retoucher:
        result = retoucher.retouch(image.copy())
    assert not (np.asarray(result.applied_mask, bool) & mark).any()
    np.testing.assert_array_equal(np.asarray(result.pixels)[mark], image[mark])
