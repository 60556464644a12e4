"""Many spots in one call: the same fill and texture figure as one spot at a time."""

from __future__ import annotations

import numpy as np
import pytest

from skinretouch.benchmark.planting import oracle_mask, plant_spots
from skinretouch.config import Config
from skinretouch.imageio import from_float, to_float
from skinretouch.kernels.removal import crop_margin, remove_freqsplit
from skinretouch.kernels.removal_batch import fill_spots
from skinretouch.kernels.texture import texture_ratio
from skinretouch.regions import build_regions, detection_from_mask

MIN_RATIO_AREA = 40


@pytest.fixture(scope="module")
def photo_spots(bench_photos):
    photo = bench_photos["grace_hopper"]
    blemished, spots = plant_spots(photo, seed=1)
    image = (np.rint(np.clip(blemished, 0, 1) * 255) / 255).astype(np.float32)
    mask = oracle_mask(spots, image.shape, dilation_px=1)
    detection = detection_from_mask(mask)
    regions = build_regions(detection, dilation_px=0, route=Config().route)
    return image, mask, regions, detection.scale


def test_each_spot_equals_its_own_crop_fill(photo_spots):
    image, mask, regions, scale = photo_spots
    margin = crop_margin(scale)
    seeds = np.arange(len(regions)) + 7
    filled, ratios = fill_spots(image, np.array([r.bbox for r in regions]), [r.hole for r in regions], mask,
                                seeds=seeds, scale=scale, margin=margin, min_ratio_area=MIN_RATIO_AREA)
    assert len(regions) >= 4
    height, width = mask.shape
    for region, box_fill, ratio, seed in zip(regions, filled, ratios, seeds):
        x, y, w, h = region.bbox
        x0, y0 = max(0, x - margin), max(0, y - margin)
        window = (slice(y0, min(height, y + h + margin)), slice(x0, min(width, x + w + margin)))
        hole = np.zeros(mask[window].shape, bool)
        hole[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = region.hole
        alone = remove_freqsplit(image[window], hole, avoid=mask[window] & ~hole, scale=scale, seed=int(seed))
        box = (slice(y - y0, y - y0 + h), slice(x - x0, x - x0 + w))
        assert np.array_equal(box_fill, alone[box])
        assert np.array_equal(box_fill[~region.hole], image[y : y + h, x : x + w][~region.hole])
        if region.area_px >= MIN_RATIO_AREA:
            expected = texture_ratio(alone, hole, scale=scale, avoid=mask[window] & ~hole)
            assert ratio == pytest.approx(expected, rel=1e-6)
        else:
            assert np.isnan(ratio)


def test_grouping_and_order_change_nothing(photo_spots):
    image, mask, regions, scale = photo_spots
    boxes = np.array([r.bbox for r in regions])
    seeds = np.arange(len(regions))
    kwargs = dict(scale=scale, margin=crop_margin(scale), min_ratio_area=MIN_RATIO_AREA)
    together, _ = fill_spots(image, boxes, [r.hole for r in regions], mask, seeds=seeds, **kwargs)
    order = np.arange(len(regions))[::-1]
    apart, _ = fill_spots(image, boxes[order], [regions[i].hole for i in order], mask, seeds=seeds[order],
                          **kwargs)  # fmt: skip
    for i, box_fill in zip(order, apart):
        assert np.array_equal(box_fill, together[i])


def test_mismatched_inputs_are_rejected(photo_spots):
    image, mask, regions, scale = photo_spots
    boxes = np.array([r.bbox for r in regions])
    holes = [r.hole for r in regions]
    kwargs = dict(scale=scale, margin=crop_margin(scale), min_ratio_area=MIN_RATIO_AREA)
    with pytest.raises(ValueError, match="as many holes"):
        fill_spots(image, boxes, holes[:-1], mask, seeds=np.arange(len(holes)), **kwargs)
    with pytest.raises(ValueError, match="does not fit"):
        fill_spots(image, boxes, [holes[1]] + holes[1:], mask, seeds=np.arange(len(holes)), **kwargs)
    with pytest.raises(ValueError, match="avoid"):
        fill_spots(image, boxes, holes, mask[:-1], seeds=np.arange(len(holes)), **kwargs)


def test_stored_integers_give_the_float_photos_fill(photo_spots):
    """The pipeline repairs a handed-over photo from its stored bytes: each crop converted as
    to_float converts it, so the fill is the float photo's to the bit."""
    image, mask, regions, scale = photo_spots
    stored = from_float(image, 8)
    image = to_float(stored)  # a decoded photo's floats (the fixture's differ in the last bit)
    boxes = np.array([r.bbox for r in regions])
    kwargs = dict(seeds=np.arange(len(regions)), scale=scale, margin=crop_margin(scale),
                  min_ratio_area=MIN_RATIO_AREA)
    from_floats, float_ratios = fill_spots(image, boxes, [r.hole for r in regions], mask, **kwargs)
    from_bytes, byte_ratios = fill_spots(stored, boxes, [r.hole for r in regions], mask, **kwargs)
    assert all(np.array_equal(a, b) for a, b in zip(from_floats, from_bytes))
    assert np.array_equal(float_ratios, byte_ratios, equal_nan=True)
