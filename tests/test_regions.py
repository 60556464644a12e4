"""From spots to repair regions: dilation, protection, merging, routing, hard cases."""

from __future__ import annotations

import numpy as np
import pytest

from skinretouch.config import RouteConfig
from skinretouch.detection import Detection, Spot, bbox_of
from skinretouch.regions import ROUTE_FREQSPLIT, build_regions, dilate
from skinretouch.sidecars import is_ignored_name, is_sidecar_or_output, output_paths


def _detection(labels, *, protected=None, scale=1.0):
    spots = [Spot(label=int(v), kind="papule", score=0.5 + 0.1 * int(v)) for v in np.unique(labels) if v]
    return Detection(
        labels=labels.astype(np.int32),
        spots=spots,
        protected_mask=protected if protected is not None else np.zeros(labels.shape, bool),
        scale=scale,
    )


def _disc(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def test_dilation_grows_by_the_radius_and_zero_copies():
    mask = np.zeros((41, 41), bool)
    mask[20, 20] = True
    grown = dilate(mask, 3)
    assert bbox_of(grown) == (17, 17, 7, 7)
    same = dilate(mask, 0)
    assert np.array_equal(same, mask) and same is not mask


def test_spots_whose_dilated_masks_touch_become_one_region():
    labels = np.zeros((60, 60), np.int32)
    labels[_disc(labels.shape, (20, 20), 3)] = 1
    labels[_disc(labels.shape, (20, 28), 2)] = 2  # 8 px apart: touching after 3 px dilation
    labels[_disc(labels.shape, (45, 45), 2)] = 3
    regions = build_regions(_detection(labels), dilation_px=3, route=RouteConfig())
    assert len(regions) == 2
    assert [r.id for r in regions] == [1, 2]
    assert regions[0].kind == "papule" and regions[0].score == pytest.approx(0.6)  # the larger spot
    total = np.zeros(labels.shape, bool)
    for region in regions:
        x, y, w, h = region.bbox
        assert not (total[y : y + h, x : x + w] & region.hole).any(), "regions overlap"
        total[y : y + h, x : x + w] |= region.hole
    assert np.array_equal(total, dilate(labels > 0, 3))


def test_protected_pixels_are_never_in_a_hole_and_flag_the_region():
    labels = np.zeros((40, 40), np.int32)
    labels[_disc(labels.shape, (20, 20), 4)] = 1
    protected = np.zeros(labels.shape, bool)
    protected[:, 24:] = True
    (region,) = build_regions(_detection(labels, protected=protected), dilation_px=3, route=RouteConfig())
    x, y, w, h = region.bbox
    assert x + w <= 24
    assert "touches_protected_feature" in region.hard_reasons


def test_routing_by_size_at_face_scale_and_edge_flag():
    labels = np.zeros((400, 400), np.int32)
    labels[_disc(labels.shape, (100, 100), 4)] = 1  # small
    labels[_disc(labels.shape, (250, 250), 30)] = 2  # large
    labels[0:3, 390:400] = 3  # at the edge
    regions = build_regions(_detection(labels), dilation_px=2, route=RouteConfig())
    by_center = {r.bbox[1] + r.bbox[3] // 2: r for r in regions}
    assert by_center[100].route == ROUTE_FREQSPLIT and not by_center[100].hard_reasons
    assert by_center[250].size == "medium" and by_center[250].route == ROUTE_FREQSPLIT
    assert "large_area" in by_center[250].hard_reasons
    edge = next(r for r in regions if r.bbox[1] == 0)
    assert "touches_image_edge" in edge.hard_reasons

    # The same 8-px spot is "small" on a photo at twice the face scale only if it stays under
    # the diameter threshold measured at face scale.
    tight = RouteConfig(small_max_diameter_px=8.0)
    at_scale_1 = build_regions(_detection(labels), dilation_px=2, route=tight)
    at_scale_2 = build_regions(_detection(labels, scale=2.0), dilation_px=2, route=tight)
    assert at_scale_1[0].size == "medium"
    assert at_scale_2[0].size == "small"


def test_sidecar_names_follow_darktable_and_are_recognised(tmp_path):
    paths = output_paths(tmp_path / "IMG_1.JPG")
    assert paths.image.name == "IMG_1.retouched.JPG"
    assert paths.mask.name == "IMG_1.JPG.mask.png"
    assert paths.report.name == "IMG_1.JPG.retouch.json"
    other = output_paths(tmp_path / "IMG_1.CR3", tmp_path / "out")
    assert other.report == tmp_path / "out" / "IMG_1.CR3.retouch.json"
    for produced in (paths.image, paths.mask, paths.report, "x.jpg.overlay.png"):
        assert is_sidecar_or_output(produced)
    for original in ("IMG_1.JPG", "retouched.jpg", "a.mask.jpg", "photo.tiff"):
        assert not is_sidecar_or_output(original)
    for ignored in (".hidden.jpg", "a.jpg.part", "b.tmp", "c.jpg~", ".a.jpg.x1y2.tmp"):
        assert is_ignored_name(ignored)
    assert not is_ignored_name("a.jpg")
