"""From detected spots to repair regions: dilate, keep off protected pixels, split, route.

A region is one connected component of the dilated spot masks, so spots whose dilated
masks touch are repaired together and no two repairs overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

from .config import RouteConfig
from .detection import BBox, Detection, Spot
from .kernels.labels import label_boxes, label_sparse, lazy_zeros, merged_windows
from .routes import NEED_MEDIUM, NEED_SMALL, ROUTE_FREQSPLIT, ROUTE_PATCHMATCH
from .scale import image_scale

__all__ = [
    "ROUTE_FREQSPLIT",
    "ROUTE_PATCHMATCH",
    "SIZE_MEDIUM",
    "SIZE_SMALL",
    "Region",
    "build_regions",
    "build_regions_whole_image",
    "detection_from_mask",
    "dilate",
    "route_region",
]

# A region's size class is the need it starts from (:mod:`skinretouch.routes`).
SIZE_SMALL = NEED_SMALL
SIZE_MEDIUM = NEED_MEDIUM


@dataclass(kw_only=True)
class Region:
    """One repair: the pixels to replace and what the report says about them."""

    id: int
    bbox: BBox
    hole: np.ndarray  # (bbox h, bbox w) bool: pixels to replace, within bbox
    kind: str
    score: float
    size: str = SIZE_SMALL
    route: str = ROUTE_FREQSPLIT  # the classical route, taken when no neural engine serves it
    hard_reasons: list[str] = field(default_factory=list)

    @cached_property
    def area_px(self) -> int:
        return int(self.hole.sum())

    @property
    def equivalent_diameter_px(self) -> float:
        return 2.0 * math.sqrt(self.area_px / math.pi)


def dilate(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """Grow a bool mask by a disc of ``radius_px`` pixels."""
    if radius_px <= 0:
        return mask.copy()
    size = 2 * radius_px + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def build_regions(detection: Detection, *, dilation_px: int, route: RouteConfig) -> list[Region]:
    """Dilate every spot, drop protected pixels, split into connected regions and route them.

    The work is done on boxes around groups of spots, not the whole photo (on a large photo
    a whole-image pass cost more than repairing a few spots): each spot's box is grown by the
    dilation plus 2 px and overlapping boxes are merged, so every dilated hole and its 1-px
    contact test fit inside one box and holes of different boxes cannot touch. The result
    equals :func:`build_regions_whole_image`'s: regions are numbered from 1 as OpenCV numbers
    the components of the whole image, so the same detection always gives the same regions.
    """
    height, width = detection.labels.shape
    largest = max((spot.label for spot in detection.spots), default=0)
    boxes = detection.label_boxes
    if boxes is None or boxes.shape[0] != largest + 1:
        boxes = label_boxes(detection.labels, largest)
    if boxes is None:  # labels the spot list does not name
        return build_regions_whole_image(detection, dilation_px=dilation_px, route=route)
    spot_by_label = {spot.label: spot for spot in detection.spots}
    if detection.labels_are_components and dilation_px <= 0 and not detection.protected_mask.any():
        # Each label is a region already, numbered as OpenCV numbers the components.
        return _label_regions(detection, boxes, spot_by_label, route=route)
    boxes = boxes[boxes[:, 0] < boxes[:, 2]]  # the labels that occur
    windows = merged_windows(boxes, max(0, dilation_px) + 2, height, width)
    regions = [
        region
        for window in windows
        for region in _regions_in_window(detection, window, dilation_px=dilation_px, route=route,
                                         spot_by_label=spot_by_label)  # fmt: skip
    ]
    regions.sort(key=_first_block)
    for number, region in enumerate(regions, start=1):
        region.id = number
    return regions


def build_regions_whole_image(detection: Detection, *, dilation_px: int, route: RouteConfig) -> list[Region]:
    """:func:`build_regions` in one pass over the whole photo (its reference in the tests)."""
    height, width = detection.labels.shape
    spot_by_label = {spot.label: spot for spot in detection.spots}
    return _regions_in_window(detection, (0, 0, height, width), dilation_px=dilation_px, route=route,
                              spot_by_label=spot_by_label)  # fmt: skip


def detection_from_mask(mask: np.ndarray, *, scale: float | None = None) -> Detection:
    """A user's mask as a detection: each 8-connected component is one ``user_mask`` spot.

    ``scale``: the photo's face scale (:mod:`.scale`) when known; None guesses it from the size.

    Labels equal ``cv2.connectedComponents`` of the whole mask (found from the mask's row
    runs, which is cheaper on a sparse mask; see :func:`.kernels.labels.label_sparse`).
    """
    height, width = mask.shape
    labels, count, boxes = label_sparse(mask)
    return Detection(
        labels=labels,
        spots=[Spot(label=i, kind="user_mask", score=1.0) for i in range(1, count + 1)],
        protected_mask=lazy_zeros(mask.shape, bool),
        scale=image_scale(height, width) if scale is None else scale,
        method="user_mask",
        label_boxes=boxes,
        labels_are_components=True,
    )


def _regions_in_window(
    detection: Detection,
    window: tuple[int, int, int, int],
    *,
    dilation_px: int,
    route: RouteConfig,
    spot_by_label: dict[int, Spot],
) -> list[Region]:
    """Regions whose holes lie in ``window`` = (y0, x0, y1, x1); flags and routes are
    judged against the whole photo."""
    height, width = detection.labels.shape
    y0, x0, y1, x1 = window
    labels = detection.labels[y0:y1, x0:x1]
    protected = detection.protected_mask[y0:y1, x0:x1]
    any_protected = protected.any()
    holes = dilate(labels > 0, dilation_px) if dilation_px > 0 else labels > 0
    if any_protected:
        holes &= ~protected
    count, components, stats, _ = cv2.connectedComponentsWithStats(holes.view(np.uint8), connectivity=8)
    touches_protected = dilate(protected, 1) if any_protected else None
    regions = []
    for component, (x, y, w, h) in enumerate(stats[1:count, :4].tolist(), start=1):
        hole = components[y : y + h, x : x + w] == component
        kind, score = _dominant_spot(labels[y : y + h, x : x + w][hole], spot_by_label)
        region = Region(id=len(regions) + 1, bbox=(x + x0, y + y0, w, h), hole=hole, kind=kind, score=score)
        if touches_protected is not None and (touches_protected[y : y + h, x : x + w] & hole).any():
            region.hard_reasons.append("touches_protected_feature")
        if x + x0 == 0 or y + y0 == 0 or x + x0 + w == width or y + y0 + h == height:
            region.hard_reasons.append("touches_image_edge")
        route_region(region, image_area=height * width, scale=detection.scale, config=route)
        regions.append(region)
    return regions


def _label_regions(
    detection: Detection, boxes: np.ndarray, spot_by_label: dict[int, Spot], *, route: RouteConfig
) -> list[Region]:
    """One region per label, for labels that are connected components and need no dilation."""
    height, width = detection.labels.shape
    regions = []
    for label, (y0, x0, y1, x1) in enumerate(boxes.tolist()):
        if label == 0 or y0 >= y1:
            continue
        spot = spot_by_label.get(label)
        region = Region(
            id=len(regions) + 1,
            bbox=(x0, y0, x1 - x0, y1 - y0),
            hole=detection.labels[y0:y1, x0:x1] == label,
            kind="spot" if spot is None else spot.kind,
            score=0.0 if spot is None else float(spot.score),
        )
        if x0 == 0 or y0 == 0 or x1 == width or y1 == height:
            region.hard_reasons.append("touches_image_edge")
        route_region(region, image_area=height * width, scale=detection.scale, config=route)
        regions.append(region)
    return regions


def _first_block(region: Region) -> tuple[int, int]:
    """OpenCV numbers components by the first 2 x 2 block (from the image's origin) they
    cover in raster order of blocks; an 8-connected block never holds two components."""
    x, y, _, _ = region.bbox
    rows = region.hole[: 2 - y % 2]  # the hole's rows in its top block row
    return y // 2, (x + int(np.flatnonzero(rows.any(axis=0))[0])) // 2


def route_region(region: Region, *, image_area: int, scale: float, config: RouteConfig) -> None:
    """Class the region by size, choose its classical route, flag large regions as hard.

    Small regions take the frequency-split kernel; medium ones want LaMa, and take
    ``route.medium_classical_route`` when no neural engine serves them.
    """
    area_fraction = region.area_px / image_area
    diameter_at_face_scale = region.equivalent_diameter_px / scale
    small = (
        diameter_at_face_scale <= config.small_max_diameter_px
        and area_fraction <= config.small_max_area_fraction
    )
    region.size = SIZE_SMALL if small else SIZE_MEDIUM
    region.route = ROUTE_FREQSPLIT if small else config.medium_classical_route
    if area_fraction > config.hard_area_fraction:
        region.hard_reasons.append("large_area")


def _dominant_spot(labels_in_hole: np.ndarray, spot_by_label: dict) -> tuple[str, float]:
    """Kind and score of the spot covering most of a region (regions may merge spots)."""
    present = labels_in_hole[labels_in_hole > 0]
    if present.size == 0:
        return "spot", 0.0
    if present.min() == present.max():  # one spot: no counting needed
        spot = spot_by_label.get(int(present[0]))
        return ("spot", 0.0) if spot is None else (spot.kind, float(spot.score))
    values, counts = np.unique(present, return_counts=True)
    spot = spot_by_label.get(int(values[np.argmax(counts)]))
    if spot is None:
        return "spot", 0.0
    return spot.kind, float(spot.score)
