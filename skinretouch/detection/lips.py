"""Lips found by their colour, where no face was found to draw them.

Acne photos are often close-ups of a cheek and the corner of a mouth, or collage panels of the
lower face: the landmarker finds no face there, so nothing drew the lips, and the colour-only
search took their red edge for papules (dev real acne: 01, 19, 35, 47; on a test collage a whole
pair of lips was retouched). Lips are the one large, solid, red and darker area beside such
skin. Papules are small; an inflamed cluster is as red but patchy (not solid), or so large that
it is the view itself (a cystic cheek), not a feature beside it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .types import BBox

__all__ = ["lips_by_colour"]

# Skin pixels (skin likelihood at least this) give the skin's own colour and spread.
SKIN_LIKELIHOOD = 0.3
# A lip pixel is redder than the skin's median a* by this much, and by this many of the skin's
# a* SDs (robust: interquartile range / 1.35), whichever is more.
LIP_A_RISE = 7.0
LIP_A_RISE_SDS = 2.5
# A lip is at least as large as a disc of this radius (face units): on dev real-acne close-ups
# lips were 1300-4600 working px at 1 px per unit, the largest red papule clusters 260-720.
LIP_MIN_R = 18.0
# ... and covers at most this share of the searched area (a larger red area is inflamed skin).
LIP_MAX_SHARE = 0.12
# Solid (area over convex hull) and darker than the skin by this many L* units (median).
LIP_MIN_SOLIDITY = 0.8
LIP_MIN_DARKER = 8.0
# Grown by this many face units: the vermilion border fades over a few pixels.
LIP_MARGIN = 3.0


def lips_by_colour(lab: np.ndarray, skin: np.ndarray, unit: float) -> tuple[np.ndarray, list[BBox]]:
    """Lips on a photo searched without a face: ``(mask, boxes)`` on the grid of ``lab``.

    Parameters
    ----------
    lab : (H, W, 3) float32 CIE Lab of the searched area
    skin : (H, W) float32 skin likelihood in [0, 1]
    unit : float
        Pixels per face unit on this grid.
    """
    height, width = skin.shape
    mask = np.zeros((height, width), np.uint8)
    on_skin = skin >= SKIN_LIKELIHOOD
    if on_skin.sum() < 100:
        return mask.astype(bool), []
    skin_a = lab[..., 1][on_skin]
    q1, median_a, q3 = np.percentile(skin_a, [25, 50, 75])
    rise = max(LIP_A_RISE, LIP_A_RISE_SDS * (q3 - q1) / 1.35)
    median_l = float(np.median(lab[..., 0][on_skin]))
    red = (lab[..., 1] >= median_a + rise).astype(np.uint8)
    # Closed, then opened: a lip's fine lines and highlights belong to it; thin red edges
    # (a nostril rim, an ear's fold) are not lips.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, round(1.5 * unit)) + 1,) * 2)
    red = cv2.morphologyEx(cv2.morphologyEx(red, cv2.MORPH_CLOSE, kernel), cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(red, connectivity=8)
    min_area = math.pi * (LIP_MIN_R * unit) ** 2
    max_area = LIP_MAX_SHARE * height * width
    boxes: list[BBox] = []
    for k in range(1, count):
        area = int(stats[k, cv2.CC_STAT_AREA])
        if not min_area <= area <= max_area:
            continue
        x, y, w, h = (int(v) for v in stats[k, :4])
        part = (labels[y : y + h, x : x + w] == k).astype(np.uint8)
        contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if area < LIP_MIN_SOLIDITY * hull_area:
            continue
        if median_l - float(np.median(lab[y : y + h, x : x + w, 0][part > 0])) < LIP_MIN_DARKER:
            continue
        mask[y : y + h, x : x + w] |= part
        boxes.append((x, y, w, h))
    if boxes:
        pad = max(1, round(LIP_MARGIN * unit))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1,) * 2))
    return mask.astype(bool), boxes
