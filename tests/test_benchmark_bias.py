"""Signed colour bias, seam and skin-tone figures of the bench measure what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from skinretouch.benchmark.metrics import removal_metrics, skin_tone_group
from skinretouch.benchmark.photos import load_bench_photos
from skinretouch.benchmark.planting import oracle_mask, plant_spots


@pytest.fixture(scope="module")
def grace_planted():
    photo = load_bench_photos(names=["grace_hopper"])[0]
    blemished, spots = plant_spots(photo, seed=2, n_spots=5, n_moles=0)
    return photo, blemished, spots


def _shift_lab(rgb8, region, shift):
    lab = rgb2lab(rgb8)
    lab[region] += np.asarray(shift, dtype=np.float64)
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def test_signed_bias_reads_a_dark_red_ghost_and_zero_for_the_truth(grace_planted):
    photo, _, spots = grace_planted
    mask = oracle_mask(spots, photo.rgb.shape, dilation_px=1)
    perfect = removal_metrics(photo.rgb, photo.rgb, spots, scale=photo.scale, mask=mask)
    assert perfect["dL"] == 0.0 and perfect["da"] == 0.0 and perfect["db"] == 0.0
    assert perfect["seam_lf_dE"] == 0.0 and perfect["seam_grad"] == pytest.approx(1.0)
    ghost = _shift_lab(photo.rgb, mask, (-2.0, 1.0, 0.0))
    scores = removal_metrics(ghost, photo.rgb, spots, scale=photo.scale, mask=mask)
    assert scores["dL"] == pytest.approx(-2.0, abs=0.15)
    assert scores["da"] == pytest.approx(1.0, abs=0.15)
    assert abs(scores["db"]) < 0.15
    assert set(scores["per_kind"][spots[0].kind]) >= {"dL", "da", "db"}


def test_seam_sees_a_step_at_the_mask_edge_but_not_a_matched_fill(grace_planted):
    photo, _, spots = grace_planted
    mask = oracle_mask(spots, photo.rgb.shape, dilation_px=1)
    stepped = _shift_lab(photo.rgb, mask, (6.0, 0.0, 0.0))
    step = removal_metrics(stepped, photo.rgb, spots, scale=photo.scale, mask=mask)
    assert step["seam_grad"] > 1.2 and step["seam_lf_dE"] > 0.5
    # A smooth fill that meets the ring (Telea-like) has no step: only slightly less gradient.
    import cv2

    smooth = cv2.inpaint(photo.rgb, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    matched = removal_metrics(smooth, photo.rgb, spots, scale=photo.scale, mask=mask)
    assert matched["seam_grad"] < step["seam_grad"] and matched["seam_lf_dE"] < step["seam_lf_dE"]


def test_skin_tone_groups_order_pale_to_dark():
    skin = np.ones((8, 8), dtype=bool)
    groups = []
    for lab in ((78.0, 8.0, 14.0), (62.0, 13.0, 22.0), (45.0, 14.0, 22.0), (28.0, 10.0, 14.0)):
        rgb = np.clip(lab2rgb(np.broadcast_to(np.array(lab), (8, 8, 3))), 0, 1)
        groups.append(skin_tone_group((rgb * 255).round().astype(np.uint8), skin))
    assert [g for g, _ in groups] == ["very_light", "intermediate", "brown", "dark"]
    assert [ita for _, ita in groups] == sorted((ita for _, ita in groups), reverse=True)
