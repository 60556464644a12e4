"""Feathered alpha inside a hole and the composite that leaves everything else untouched."""

from __future__ import annotations

import cv2
import numpy as np

from ._checks import as_image

__all__ = ["composite", "feather_alpha"]


def feather_alpha(hole: np.ndarray, *, feather_px: int) -> np.ndarray:
    """Blend weight that is 0 outside ``hole`` and ramps up to 1 inside it.

    The ramp lies wholly inside the hole, so pixels outside the hole keep their values
    exactly: a pixel at Euclidean distance ``d`` (px) from the nearest pixel outside the
    hole gets ``min(1, d / (feather_px + 1))``; the outermost ``feather_px`` rings are
    partial, deeper pixels are 1.

    Parameters
    ----------
    hole : (H, W) bool ndarray
    feather_px : int
        Ramp width in pixels; 0 gives a hard mask.

    Returns
    -------
    (H, W) float32 ndarray
        Values in ``[0, 1]``.
    """
    hole = np.ascontiguousarray(hole, dtype=bool)
    if hole.ndim != 2:
        raise ValueError(f"hole must be 2-D, got shape {hole.shape}")
    if feather_px < 0:
        raise ValueError(f"feather_px must be >= 0, got {feather_px}")
    if feather_px == 0 or not hole.any():
        return hole.astype(np.float32)
    # Pad with background so the image border counts as "outside" too.
    padded = np.pad(hole, 1).astype(np.uint8)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    alpha = np.minimum(1.0, distance / (feather_px + 1.0)).astype(np.float32)
    alpha[~hole] = 0.0
    return alpha


def composite(original: np.ndarray, filled: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``original * (1 - alpha) + filled * alpha``, exact where alpha is 0 or 1.

    Parameters
    ----------
    original, filled : (H, W, 3) float ndarray
        Same shape, values in ``[0, 1]``.
    alpha : (H, W) float ndarray
        Weights in ``[0, 1]``.

    Returns
    -------
    (H, W, 3) float32 ndarray
        Bit-identical to ``original`` (as float32) where ``alpha == 0`` and to ``filled``
        where ``alpha == 1``.
    """
    original = as_image(original, "original")
    filled = as_image(filled, "filled")
    if filled.shape != original.shape:
        raise ValueError(f"filled must have shape {original.shape}, got {filled.shape}")
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.shape != original.shape[:2]:
        raise ValueError(f"alpha must have shape {original.shape[:2]}, got {alpha.shape}")
    out = original.copy()
    partial = (alpha > 0.0) & (alpha < 1.0)
    weight = alpha[partial][:, None]
    out[partial] = original[partial] * (1.0 - weight) + filled[partial] * weight
    full = alpha >= 1.0
    out[full] = filled[full]
    return out
