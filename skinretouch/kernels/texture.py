"""How much fine texture a filled hole carries compared with the skin around it.

The figure behind the ``hard_case`` flag: a smooth ("plastic") fill scores about 0.5, a
fill with skin-like pores about 1. It mirrors the bench's ``texture_ratio`` but needs no
ground truth: the reference is the ring of skin around the hole.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_image, as_mask
from .ahead_of_time import njit
from .blur import blur_into, gaussian, gaussian_taps
from .color import rgb_to_lightness, rgb_to_lightness_into
from .labels import mask_box
from .tuning import BLUR_TRUNCATE_SIGMAS, RATIO_HIGH_PASS_SIGMA, RATIO_RING_WIDTH

__all__ = ["high_pass_lightness", "ratio_around", "ratio_reach", "texture_ratio"]


def high_pass_lightness(image: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    """High-pass of L*: ``L - gaussian(L, sigma=1 px * scale)``.

    Parameters
    ----------
    image : (H, W, 3) float ndarray
        sRGB in ``[0, 1]``.
    scale : float
        Face-scale factor.

    Returns
    -------
    (H, W) float32 ndarray
        L* units.
    """
    lightness = rgb_to_lightness(image)
    return lightness - gaussian(lightness, RATIO_HIGH_PASS_SIGMA * scale)


def texture_ratio(
    image: np.ndarray, hole: np.ndarray, *, scale: float = 1.0, avoid: np.ndarray | None = None
) -> float:
    """Std of the high-pass L* inside ``hole`` over its std in a ring around it.

    Parameters
    ----------
    image : (H, W, 3) float ndarray
        The filled crop, sRGB in ``[0, 1]``.
    hole : (H, W) bool ndarray
        The filled region.
    scale : float
        Face-scale factor (the ring is ``4 px * scale`` wide).
    avoid : (H, W) bool ndarray or None
        Pixels left out of the ring (other spots, protected features).

    Returns
    -------
    float
        About 1 for skin-like texture, about 0.5 for a smooth fill. ``nan`` when the
        hole or the ring is empty or the ring has no texture at all.
    """
    image = as_image(image)
    hole = as_mask(hole, image.shape, "hole")
    excluded = np.zeros(hole.shape, bool) if avoid is None else as_mask(avoid, image.shape, "avoid")
    ring_px, reach = ratio_reach(scale)
    lightness = np.empty(image.shape[:2] + (1,), np.float32)
    rgb_to_lightness_into(image, lightness)
    return float(ratio_around(lightness, hole, excluded, ring_px, reach, gaussian_taps(RATIO_HIGH_PASS_SIGMA * scale)))


def ratio_reach(scale: float) -> tuple[int, int]:
    """Ring width and how far around the hole :func:`ratio_around` looks, in px."""
    ring_px = max(1, int(round(RATIO_RING_WIDTH * scale)))
    return ring_px, ring_px + int(np.ceil(BLUR_TRUNCATE_SIGMAS * RATIO_HIGH_PASS_SIGMA * scale)) + 1


@njit(cache=True, nogil=True)
def ratio_around(lightness, hole, excluded, ring_px, reach, taps):
    """:func:`texture_ratio` of an image given by its L* (``(h, w, 1)`` float32; ``ring_px``
    and ``reach`` from :func:`ratio_reach`, ``taps`` of the high-pass), computed on the box
    holding the hole, its ring and the blur's reach only."""
    if not hole.any():
        return np.nan
    box = mask_box(hole)
    height, width = hole.shape
    y0, y1 = max(0, box[0] - reach), min(height, box[1] + 1 + reach)
    x0, x1 = max(0, box[2] - reach), min(width, box[3] + 1 + reach)
    return _ratio(np.ascontiguousarray(lightness[y0:y1, x0:x1]), hole[y0:y1, x0:x1].copy(),
                  excluded[y0:y1, x0:x1].copy(), ring_px, taps)  # fmt: skip


@njit(cache=True, nogil=True)
def _ratio(lightness, hole, excluded, ring_px, taps):
    """The ratio of :func:`texture_ratio` on a box holding the hole, its ring and the blur."""
    height, width = hole.shape
    low = np.empty_like(lightness)
    blur_into(lightness, taps, low)
    # Ring: within ``ring_px`` (chessboard) of the hole, as two 1-D dilations.
    across = np.zeros((height, width), np.bool_)
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                for xx in range(max(0, x - ring_px), min(width, x + ring_px + 1)):
                    across[y, xx] = True
    sums = np.zeros(2)
    squares = np.zeros(2)
    counts = np.zeros(2)
    for y in range(height):
        for x in range(width):
            high = np.float64(lightness[y, x, 0] - low[y, x, 0])
            if hole[y, x]:
                which = 0
            elif excluded[y, x]:
                continue
            else:
                near = False
                for yy in range(max(0, y - ring_px), min(height, y + ring_px + 1)):
                    if across[yy, x]:
                        near = True
                        break
                if not near:
                    continue
                which = 1
            sums[which] += high
            squares[which] += high * high
            counts[which] += 1
    if counts[0] == 0 or counts[1] == 0:
        return np.nan
    ring_var = squares[1] / counts[1] - (sums[1] / counts[1]) ** 2
    ring_std = np.sqrt(max(ring_var, 0.0))
    if ring_std <= 1e-6:
        return np.nan
    hole_var = squares[0] / counts[0] - (sums[0] / counts[0]) ** 2
    return np.sqrt(max(hole_var, 0.0)) / ring_std
