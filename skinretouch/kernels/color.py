"""sRGB <-> CIE L*a*b* (D65, 2 degree observer) in float32, jitted.

The conversion matches :func:`skimage.color.rgb2lab` / :func:`skimage.color.lab2rgb`
(the bench measures colour error with them) within 3e-4 L*a*b* units: the transfer
curves are tabulated (see ``_tables``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._checks import as_image

__all__ = ["lab_to_rgb", "rgb_to_lab", "rgb_to_lightness"]

# sRGB primaries to XYZ (D65) and back, as in scikit-image.
_XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=np.float64,
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)


# The power and cube-root functions dominated the conversions' time, so the three curves
# go through tables with linear interpolation. Errors: sRGB decode < 1e-7, L*a*b* < 1e-4,
# sRGB encode < 2e-6 (a 1/255 step is 4e-3), far below what any kernel or metric resolves.
_TABLE_STEPS = 16384
_LAB_F_RANGE = 1.25  # XYZ / white never exceeds ~1.09 for in-gamut sRGB


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = np.linspace(0.0, 1.0, _TABLE_STEPS + 1)
    decode = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    encode = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055)
    t = np.linspace(0.0, _LAB_F_RANGE, _TABLE_STEPS + 1)
    lab_f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    # One extra entry each, so interpolating at the top of the range stays in bounds.
    curves = (decode, encode, lab_f)
    return tuple(np.append(curve, curve[-1]).astype(np.float64) for curve in curves)


_DECODE, _ENCODE, _LAB_F = _tables()


@njit(cache=True, nogil=True)
def _lookup(table, position):
    """Linear interpolation in ``table`` at ``position`` (in table steps, clamped)."""
    steps = table.size - 2
    position = min(max(position, 0.0), float(steps))
    i = int(position)
    frac = position - i
    return table[i] + frac * (table[i + 1] - table[i])


def rgb_to_lab(image: np.ndarray) -> np.ndarray:
    """Convert sRGB to CIE L*a*b*.

    Parameters
    ----------
    image : (H, W, 3) float ndarray
        sRGB in ``[0, 1]`` (any float dtype or memory order).

    Returns
    -------
    (H, W, 3) float32 ndarray
        L* in ``[0, 100]``, a* and b* in about ``[-128, 127]``.
    """
    rgb = as_image(image)
    out = np.empty_like(rgb)
    _rgb_to_lab(rgb.reshape(-1, 3), out.reshape(-1, 3), _XYZ_FROM_RGB, _WHITE_D65, _DECODE, _LAB_F)
    return out


def rgb_to_lightness(image: np.ndarray) -> np.ndarray:
    """CIE L* alone (a third of the work of :func:`rgb_to_lab`).

    Parameters
    ----------
    image : (H, W, 3) float ndarray
        sRGB in ``[0, 1]``.

    Returns
    -------
    (H, W) float32 ndarray
        L* in ``[0, 100]``.
    """
    rgb = as_image(image)
    out = np.empty(rgb.shape[:2], dtype=np.float32)
    _rgb_to_lightness(rgb.reshape(-1, 3), out.reshape(-1), _XYZ_FROM_RGB, _WHITE_D65, _DECODE,
                      _LAB_F)  # fmt: skip
    return out


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert CIE L*a*b* to sRGB, clipped to ``[0, 1]``.

    Parameters
    ----------
    lab : (H, W, 3) float ndarray
        L* in ``[0, 100]``, a*, b*.

    Returns
    -------
    (H, W, 3) float32 ndarray
        sRGB in ``[0, 1]``.
    """
    values = as_image(lab, "lab")
    out = np.empty_like(values)
    _lab_to_rgb(values.reshape(-1, 3), out.reshape(-1, 3), _RGB_FROM_XYZ, _WHITE_D65, _ENCODE)
    return out


@njit(cache=True, nogil=True)
def _lab_f(t, table):
    return _lookup(table, t * ((table.size - 2) / 1.25))


@njit(cache=True, nogil=True)
def _lab_f_inv(f):
    cube = f * f * f
    if cube > 0.008856:
        return cube
    return (f - 16.0 / 116.0) / 7.787


@njit(cache=True, nogil=True)
def _decoded(c, table):
    return _lookup(table, c * (table.size - 2))


@njit(cache=True, nogil=True)
def _rgb_to_lab(rgb, out, matrix, white, decode, lab_f):
    for i in range(rgb.shape[0]):
        r = _decoded(np.float64(rgb[i, 0]), decode)
        g = _decoded(np.float64(rgb[i, 1]), decode)
        b = _decoded(np.float64(rgb[i, 2]), decode)
        fx = _lab_f((matrix[0, 0] * r + matrix[0, 1] * g + matrix[0, 2] * b) / white[0], lab_f)
        fy = _lab_f((matrix[1, 0] * r + matrix[1, 1] * g + matrix[1, 2] * b) / white[1], lab_f)
        fz = _lab_f((matrix[2, 0] * r + matrix[2, 1] * g + matrix[2, 2] * b) / white[2], lab_f)
        out[i, 0] = 116.0 * fy - 16.0
        out[i, 1] = 500.0 * (fx - fy)
        out[i, 2] = 200.0 * (fy - fz)


@njit(cache=True, nogil=True)
def _rgb_to_lightness(rgb, out, matrix, white, decode, lab_f):
    for i in range(rgb.shape[0]):
        r = _decoded(np.float64(rgb[i, 0]), decode)
        g = _decoded(np.float64(rgb[i, 1]), decode)
        b = _decoded(np.float64(rgb[i, 2]), decode)
        fy = _lab_f((matrix[1, 0] * r + matrix[1, 1] * g + matrix[1, 2] * b) / white[1], lab_f)
        out[i] = 116.0 * fy - 16.0


@njit(cache=True, nogil=True)
def _lab_to_rgb(lab, out, matrix, white, encode):
    for i in range(lab.shape[0]):
        fy = (np.float64(lab[i, 0]) + 16.0) / 116.0
        fx = np.float64(lab[i, 1]) / 500.0 + fy
        fz = fy - np.float64(lab[i, 2]) / 200.0
        x = _lab_f_inv(fx) * white[0]
        y = _lab_f_inv(fy) * white[1]
        z = max(_lab_f_inv(fz), 0.0) * white[2]
        for c in range(3):
            linear = matrix[c, 0] * x + matrix[c, 1] * y + matrix[c, 2] * z
            out[i, c] = _lookup(encode, linear * (encode.size - 2))
