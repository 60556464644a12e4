"""Multi-scale colour and texture descriptors of skin pixels (no model weights).

Each pixel gets a short vector that says how it differs from the skin around it, at a few
scales, in the terms a retoucher would use: lighter/darker, redder, yellower, smoother or
rougher, and whether it lies on a thin line (a scar, a wrinkle) or on a round bump. The
vectors are comparable between photos because every length is given in face units
(``unit`` = pixels per face unit at the working resolution) and every contrast in CIE Lab
units against the local skin background.

Descriptor layout (``DESCRIPTOR_NAMES``), for a Lab image and skin weights:

- ``dL_s, da_s, db_s`` for the three smoothing scales ``SCALES`` (face units): Gaussian
  average of Lab minus the skin background (a wide Gaussian average over skin pixels only);
- ``texture``: local SD of the fine L detail minus the SD typical of the skin around it
  (negative = smoother than its surroundings, e.g. scar tissue or a swollen bump);
- ``ridge_s, blob_s`` for two Hessian scales: the eigenvalues of the scale-normalised Hessian
  of L, sorted so ``ridge`` is the one of larger magnitude (bright line or bump: negative;
  dark line or pit: positive) and ``blob`` the other (near 0 on a line, same sign on a bump);
- ``edge``: gradient magnitude of smoothed L, times the scale (L units per face unit).
"""

from __future__ import annotations

import math

import numpy as np

from .ahead_of_time import njit
from .blur import gaussian, weighted_gaussian

__all__ = ["DESCRIPTOR_NAMES", "SCALES", "gaussian_blur", "skin_descriptors"]

SCALES = (0.7, 1.5, 3.0)  # face units: fine, spot-sized, neighbourhood
HESSIAN_SCALES = (1.0, 2.0)  # face units
BACKGROUND_SIGMA = 8.0  # face units: the skin "around" a spot
TEXTURE_SIGMA = 2.0  # face units: window of the local texture SD

DESCRIPTOR_NAMES = (
    *(f"{c}_{s:g}" for s in SCALES for c in ("dL", "da", "db")),
    "texture",
    *(f"{c}_{s:g}" for s in HESSIAN_SCALES for c in ("ridge", "blob")),
    "edge",
)


def gaussian_blur(planes: np.ndarray, sigma: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Separable Gaussian average, optionally over weighted pixels only.

    Parameters
    ----------
    planes : (H, W) or (H, W, C) float32 ndarray
    sigma : float
        Pixels; values below 0.3 return a copy.
    weights : (H, W) float32 or bool ndarray, optional
        Sample weights in [0, 1]; pixels with weight 0 do not contribute (normalised
        convolution). Where no weight lies within reach the plain average is returned.

    Returns
    -------
    ndarray, same shape as ``planes``, float32
    """
    array = np.ascontiguousarray(planes, dtype=np.float32)
    if array.ndim not in (2, 3):
        raise ValueError(f"planes must be (H, W) or (H, W, C), got {array.shape}")
    if sigma < 0.3:
        return array.copy()
    if weights is None:
        return gaussian(array, sigma, approximate_wide=True)
    return weighted_gaussian(array, weights, sigma, min_weight=1e-3, empty="plain", approximate_wide=True)


def skin_descriptors(lab: np.ndarray, weights: np.ndarray, *, unit: float) -> np.ndarray:
    """Per-pixel multi-scale descriptors (see the module docstring).

    Parameters
    ----------
    lab : (H, W, 3) float32 ndarray
        CIE Lab as :func:`.color.rgb_to_lab` gives it (L in [0, 100]).
    weights : (H, W) float32 or bool ndarray
        Skin weight in [0, 1] of each pixel for the background average (0 = not skin).
    unit : float
        Pixels per face unit at this resolution (> 0).

    Returns
    -------
    (H, W, len(DESCRIPTOR_NAMES)) float32 ndarray
    """
    lab = np.ascontiguousarray(lab, dtype=np.float32)
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"lab must be (H, W, 3), got {lab.shape}")
    if unit <= 0:
        raise ValueError(f"unit must be > 0, got {unit}")
    w = np.ascontiguousarray(weights, dtype=np.float32)
    if w.shape != lab.shape[:2]:
        raise ValueError(f"weights shape {w.shape} does not match lab {lab.shape[:2]}")
    h, wd = lab.shape[:2]
    out = np.empty((h, wd, len(DESCRIPTOR_NAMES)), np.float32)
    background = gaussian_blur(lab, BACKGROUND_SIGMA * unit, w)
    col = 0
    for s in SCALES:
        smooth = gaussian_blur(lab, s * unit)
        out[..., col : col + 3] = smooth - background
        col += 3
    lightness = np.ascontiguousarray(lab[..., 0])
    detail = lightness - gaussian_blur(lightness, SCALES[0] * unit)
    sd = np.sqrt(np.maximum(gaussian_blur(detail * detail, TEXTURE_SIGMA * unit), 0.0))
    typical = gaussian_blur(sd, BACKGROUND_SIGMA * unit, w)
    out[..., col] = sd - typical
    col += 1
    for s in HESSIAN_SCALES:
        smooth = gaussian_blur(lightness, s * unit)
        _hessian_eigen(smooth, np.float32((s * unit) ** 2), out, col)
        col += 2
    smooth = gaussian_blur(lightness, HESSIAN_SCALES[0] * unit)
    _gradient_norm(smooth, np.float32(unit), out, col)
    return out


@njit(cache=True, nogil=True)
def _hessian_eigen(smooth, norm, out, col):
    h, w = smooth.shape
    for y in range(h):
        ym, yp = max(y - 1, 0), min(y + 1, h - 1)
        for x in range(w):
            xm, xp = max(x - 1, 0), min(x + 1, w - 1)
            c = smooth[y, x]
            dxx = smooth[y, xp] - 2.0 * c + smooth[y, xm]
            dyy = smooth[yp, x] - 2.0 * c + smooth[ym, x]
            dxy = 0.25 * (smooth[yp, xp] - smooth[yp, xm] - smooth[ym, xp] + smooth[ym, xm])
            half = 0.5 * (dxx + dyy)
            root = math.sqrt(0.25 * (dxx - dyy) ** 2 + dxy * dxy)
            e1, e2 = half + root, half - root
            if abs(e1) >= abs(e2):
                out[y, x, col], out[y, x, col + 1] = norm * e1, norm * e2
            else:
                out[y, x, col], out[y, x, col + 1] = norm * e2, norm * e1


@njit(cache=True, nogil=True)
def _gradient_norm(smooth, unit, out, col):
    h, w = smooth.shape
    for y in range(h):
        ym, yp = max(y - 1, 0), min(y + 1, h - 1)
        for x in range(w):
            xm, xp = max(x - 1, 0), min(x + 1, w - 1)
            gx = 0.5 * (smooth[y, xp] - smooth[y, xm])
            gy = 0.5 * (smooth[yp, x] - smooth[ym, x])
            out[y, x, col] = unit * math.sqrt(gx * gx + gy * gy)
