"""Skin maps: colour likelihood of skin, and thin dark strands (hair) to keep apart from it.

All functions take float32 CIE Lab planes as :func:`.color.rgb_to_lab` gives them for float
RGB in ``[0, 1]`` (the one RGB to Lab conversion, shared with removal): L in ``[0, 100]``, a*
and b* roughly in ``[-128, 127]``.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import rgb_to_lab

__all__ = [
    "SkinColourModel",
    "fit_skin_colour",
    "generic_skin_model",
    "rgb_to_lab",
    "skin_likelihood",
    "strand_map",
]


# At most this many pixels are used to fit a skin colour model.
MAX_FIT_SAMPLES = 40_000


class SkinColourModel:
    """A Gaussian model of skin colour in (L, a*, b*).

    Parameters
    ----------
    mean : (3,) float
        Mean of L, a*, b* (Lab units).
    cov : (3, 3) float
        Covariance of L, a*, b* (Lab units squared).
    """

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(3)
        self.cov = np.asarray(cov, dtype=np.float64).reshape(3, 3)

    def __repr__(self) -> str:
        sd = np.sqrt(np.diag(self.cov))
        return f"SkinColourModel(mean={self.mean.round(1).tolist()}, sd={sd.round(1).tolist()})"


def generic_skin_model() -> SkinColourModel:
    """A broad prior over human skin tones (light to dark), before any photo is seen.

    Lightness varies most between people and with lighting; hue (a*, b*) less.
    """
    mean = np.array([62.0, 15.0, 18.0])
    sd = np.array([20.0, 7.0, 9.0])
    corr = np.array([[1.0, -0.2, 0.1], [-0.2, 1.0, 0.4], [0.1, 0.4, 1.0]])
    return SkinColourModel(mean, corr * np.outer(sd, sd))


def fit_skin_colour(
    lab: np.ndarray, weights: np.ndarray, *, min_sd: tuple[float, float, float] = (6.0, 3.0, 3.0)
) -> SkinColourModel | None:
    """Fit a skin colour model to the pixels where ``weights`` is high.

    Parameters
    ----------
    lab : (H, W, 3) float32
        CIE Lab image.
    weights : (H, W) float or bool
        Sample weights (a prior likelihood or a mask), >= 0.
    min_sd : 3 floats
        Floor on the standard deviation of L, a*, b* (Lab units): a very uniform sample
        must not make the model reject ordinary shading.

    Returns
    -------
    SkinColourModel or None
        None when the weights sum to too little (fewer than ~50 pixels' worth).
    """
    w = np.asarray(weights, dtype=np.float32).reshape(-1)
    if w.sum() < 50.0:
        return None
    x = lab.reshape(-1, 3)
    keep = np.flatnonzero(w > 0)
    # A fixed-stride subsample is plenty for 3 means and a 3x3 covariance, and keeps a
    # 24-megapixel photo fast; the stride makes it deterministic.
    if keep.size > MAX_FIT_SAMPLES:
        keep = keep[:: int(np.ceil(keep.size / MAX_FIT_SAMPLES))]
    x, w = x[keep].astype(np.float64), w[keep].astype(np.float64)
    # Robust centre: weighted median per channel, then trim pixels far from it (shadows,
    # specular highlights, stray hair) before the covariance.
    centre = np.array([_weighted_median(x[:, c], w) for c in range(3)])
    mad = np.array([_weighted_median(np.abs(x[:, c] - centre[c]), w) for c in range(3)])
    spread = np.maximum(1.4826 * mad, np.asarray(min_sd))
    inlier = np.all(np.abs(x - centre) <= 2.5 * spread, axis=1)
    if w[inlier].sum() < 50.0:
        return None
    x, w = x[inlier], w[inlier]
    mean = np.average(x, axis=0, weights=w)
    d = x - mean
    cov = (d * w[:, None]).T @ d / w.sum()
    floor = np.asarray(min_sd) ** 2
    cov[np.diag_indices(3)] = np.maximum(np.diag(cov), floor)
    return SkinColourModel(mean, cov)


def skin_likelihood(
    lab: np.ndarray, model: SkinColourModel, *, lightness_weight: float = 0.5, spread: float = 1.0
) -> np.ndarray:
    """Per-pixel likelihood in [0, 1] that a pixel has the model's skin colour.

    Parameters
    ----------
    lab : (H, W, 3) float32
        CIE Lab image.
    model : SkinColourModel
        From :func:`generic_skin_model` or :func:`fit_skin_colour`.
    lightness_weight : float
        How much lightness counts against hue (0 ignores L: shading does not make skin
        less likely; 1 uses the full model).
    spread : float
        Widens the model (multiplies its standard deviations): a face's skin varies more
        (flushed cheeks, shaded sides) than the sample it was fitted on.

    Returns
    -------
    (H, W) float32
        ``exp(-d^2 / 2)``, d the Mahalanobis distance to the model (1 at the mean).
    """
    inv = np.linalg.inv(model.cov) / (spread * spread)
    # Shading changes L far more than hue: shrink L deviations rather than drop L.
    scale_l = np.sqrt(max(lightness_weight, 0.0))
    d = [
        (lab[..., c] - np.float32(model.mean[c])) * np.float32(scale_l if c == 0 else 1.0)
        for c in range(3)
    ]
    # The quadratic form plane by plane (a 3x3 matmul per pixel is slower in numpy).
    m2 = np.zeros(lab.shape[:2], np.float32)
    for i in range(3):
        m2 += np.float32(inv[i, i]) * d[i] * d[i]
        for j in range(i + 1, 3):
            m2 += np.float32(2.0 * inv[i, j]) * d[i] * d[j]
    return np.exp(-0.5 * m2).astype(np.float32)


def strand_map(
    lightness: np.ndarray,
    *,
    sigmas: tuple[float, ...] = (1.0, 1.6),
    min_depth: float = 2.0,
    min_anisotropy: float = 0.6,
) -> np.ndarray:
    """Thin dark line strength (hair strands, lash lines) from the Hessian of L.

    A dark line is a valley: the second derivative across it is strongly positive and
    along it near zero, and it is darker than the skin on *both* sides (2.5 sigma away,
    across it). Blobs (spots) curve in both directions, and the foot of a step edge (a
    spot's rim, a shadow's border) is darker than one side only: both score 0.

    Parameters
    ----------
    lightness : (H, W) float32
        CIE L in [0, 100].
    sigmas : floats
        Gaussian scales (pixels at working resolution), about half a strand's width.
    min_depth : float
        Minimal scale-normalised depth of a valley, and minimal drop below both sides
        (L units).
    min_anisotropy : float
        Minimal ``(l1 - |l2|) / l1`` (1 for a perfect line, 0 for a round blob).

    Returns
    -------
    (H, W) float32
        Scale-normalised valley depth (L units) where the pixel is line-like, else 0.
    """
    lightness = np.ascontiguousarray(lightness, dtype=np.float32)
    h, w = lightness.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    best = np.zeros_like(lightness)
    for sigma in sigmas:
        smooth = cv2.GaussianBlur(lightness, (0, 0), sigma)
        dxx = cv2.Sobel(smooth, cv2.CV_32F, 2, 0, ksize=3)
        dyy = cv2.Sobel(smooth, cv2.CV_32F, 0, 2, ksize=3)
        dxy = cv2.Sobel(smooth, cv2.CV_32F, 1, 1, ksize=3)
        half_trace = 0.5 * (dxx + dyy)
        root = np.sqrt(0.25 * (dxx - dyy) ** 2 + dxy**2)
        l1 = half_trace + root  # largest curvature: across a dark valley
        l2 = half_trace - root
        depth = (sigma**2) * l1
        anisotropy = (l1 - np.abs(l2)) / np.maximum(l1, 1e-6)
        # Direction across the valley: eigenvector of l1.
        nx, ny = dxy, l1 - dxx
        swap = np.abs(nx) + np.abs(ny) < 1e-6
        nx = np.where(swap, 1.0, nx)
        ny = np.where(swap, 0.0, ny)
        norm = np.sqrt(nx * nx + ny * ny)
        step = np.float32(2.5 * sigma)
        ox, oy = (nx / norm * step).astype(np.float32), (ny / norm * step).astype(np.float32)
        side_a = cv2.remap(smooth, grid_x + ox, grid_y + oy, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
        side_b = cv2.remap(smooth, grid_x - ox, grid_y - oy, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REFLECT)
        # A strand is darker than *both* sides; the foot of a step edge (a spot's rim,
        # a shadow's border) is darker than one side only.
        both_sides = np.minimum(side_a, side_b) - smooth
        line = (depth >= min_depth) & (anisotropy >= min_anisotropy) & (both_sides >= min_depth)
        np.maximum(best, np.where(line, depth, 0.0).astype(np.float32), out=best)
    return best


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    idx = int(np.searchsorted(cum, 0.5 * cum[-1]))
    return float(values[order[min(idx, order.size - 1)]])
