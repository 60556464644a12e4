"""The working grid: a search area of the photo, shrunk to face scale, and back.

Boxes are ``(x, y, w, h)``; ``roi`` is the search area in stored pixels; ``to_small`` is
``(sx, sy)``, working px per stored px.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import BBox

__all__ = ["grow_mask", "grow_to_full", "point_small", "shrink_mask", "to_photo", "union_box"]


def union_box(boxes: list[BBox]) -> BBox:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


def point_small(x: float, y: float, roi: BBox, to_small) -> tuple[int, int]:
    return (round((x - roi[0]) * to_small[0]), round((y - roi[1]) * to_small[1]))


def to_photo(box: BBox, roi: BBox, to_small, h: int, w: int) -> BBox:
    x, y, bw, bh = box
    x0 = roi[0] + math.floor(x / to_small[0])
    y0 = roi[1] + math.floor(y / to_small[1])
    x1 = roi[0] + math.ceil((x + bw) / to_small[0])
    y1 = roi[1] + math.ceil((y + bh) / to_small[1])
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (x0, y0, x1 - x0, y1 - y0)


def shrink_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask.copy()
    resized = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    return resized > 0


def grow_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if mask.shape == shape:
        return mask
    up = cv2.resize(mask.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return up > 0


def grow_to_full(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == shape:
        return labels
    return cv2.resize(labels, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
