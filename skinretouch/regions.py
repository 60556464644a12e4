"""From detected spots to repair regions: dilate, keep off protected pixels, split, route.

A region is one connected component of the dilated spot masks, so spots whose dilated
masks touch are repaired together and no two repairs overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import RouteConfig
from .detection import BBox, Detection

__all__ = ["Region", "build_regions", "dilate", "route_region"]

ROUTE_FREQSPLIT = "freqsplit"
ROUTE_PATCHMATCH = "patchmatch"
SIZE_SMALL = "small"
SIZE_MEDIUM = "medium"


@dataclass(kw_only=True)
class Region:
    """One repair: the pixels to replace and what the report says about them."""

    id: int
    bbox: BBox
    hole: np.ndarray  # (bbox h, bbox w) bool: pixels to replace, within bbox
    kind: str
    score: float
    size: str = SIZE_SMALL
    route: str = ROUTE_FREQSPLIT
    hard_reasons: list[str] = field(default_factory=list)

    @property
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

    Regions are numbered from 1 in raster order of their first pixel, so the same detection
    always gives the same regions.
    """
    height, width = detection.labels.shape
    holes = dilate(detection.labels > 0, dilation_px) & ~detection.protected_mask
    count, components, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=8)
    spot_by_label = {spot.label: spot for spot in detection.spots}
    touches_protected = dilate(detection.protected_mask, 1) if detection.protected_mask.any() else None
    regions = []
    for component in range(1, count):
        x, y, w, h = (int(v) for v in stats[component, :4])
        hole = components[y : y + h, x : x + w] == component
        kind, score = _dominant_spot(detection.labels[y : y + h, x : x + w][hole], spot_by_label)
        region = Region(id=len(regions) + 1, bbox=(x, y, w, h), hole=hole, kind=kind, score=score)
        if touches_protected is not None and (touches_protected[y : y + h, x : x + w] & hole).any():
            region.hard_reasons.append("touches_protected_feature")
        if x == 0 or y == 0 or x + w == width or y + h == height:
            region.hard_reasons.append("touches_image_edge")
        route_region(region, image_area=height * width, scale=detection.scale, config=route)
        regions.append(region)
    return regions


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
    values, counts = np.unique(present, return_counts=True)
    spot = spot_by_label.get(int(values[np.argmax(counts)]))
    if spot is None:
        return "spot", 0.0
    return spot.kind, float(spot.score)
