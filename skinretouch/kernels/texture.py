"""How much fine texture a filled hole carries compared with the skin around it.

The figure behind the ``hard_case`` flag: a smooth ("plastic") fill scores about 0.5, a
fill with skin-like pores about 1. It mirrors the bench's ``texture_ratio`` but needs no
ground truth: the reference is the ring of skin around the hole.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_image, as_mask
from .color import rgb_to_lightness
from .freqsplit import gaussian
from .lowfill import ring_mask

__all__ = ["high_pass_lightness", "texture_ratio"]

HIGH_PASS_SIGMA = 1.0  # px at face scale, as in the bench's texture_ratio
RING_WIDTH = 4.0  # px at face scale


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
    return lightness - gaussian(lightness, HIGH_PASS_SIGMA * scale)


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
    ring_px = max(1, int(round(RING_WIDTH * scale)))
    # Only the hole, its ring and the blur's reach around them matter: work on that box.
    reach = ring_px + int(np.ceil(3.5 * HIGH_PASS_SIGMA * scale)) + 1
    rows = np.flatnonzero(hole.any(axis=1))
    if rows.size == 0:
        return float("nan")
    cols = np.flatnonzero(hole[rows[0] : rows[-1] + 1].any(axis=0))
    box = (
        slice(max(0, rows[0] - reach), rows[-1] + 1 + reach),
        slice(max(0, cols[0] - reach), cols[-1] + 1 + reach),
    )
    image, hole = image[box], hole[box]
    high = high_pass_lightness(image, scale=scale)
    ring = ring_mask(hole, ring_px, None if avoid is None else np.asarray(avoid, dtype=bool)[box])
    if not hole.any() or not ring.any():
        return float("nan")
    ring_std = float(high[ring].std())
    if ring_std <= 1e-6:
        return float("nan")
    return float(high[hole].std()) / ring_std
