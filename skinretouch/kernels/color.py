"""sRGB <-> CIE L*a*b* (D65, 2 degree observer) in float32, jitted.

The conversion matches :func:`skimage.color.rgb2lab` / :func:`skimage.color.lab2rgb`
(the bench measures colour error with them) within 3e-4 L*a*b* units: the transfer
curves are tabulated (see ``_tables``).
"""

from __future__ import annotations

import numpy as np

from ._checks import as_image
from .ahead_of_time import njit

__all__ = [
    "lab_to_rgb",
    "lab_to_rgb_into",
    "pixel_lab",
    "pixel_lightness",
    "pixel_rgb",
    "rgb_to_lab",
    "rgb_to_lab_into",
    "rgb_to_lightness",
    "rgb_to_lightness_into",
]

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
    rgb_to_lab_into(rgb, out)
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
    out = np.empty(rgb.shape[:2] + (1,), dtype=np.float32)
    rgb_to_lightness_into(rgb, out)
    return out[:, :, 0]


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
    lab_to_rgb_into(values, out)
    return out


# --- per-pixel conversions, callable from other kernels (the tables are compile-time constants)


@njit(cache=True, nogil=True)
def _lab_f(t):
    return _lookup(_LAB_F, t * ((_LAB_F.size - 2) / _LAB_F_RANGE))


@njit(cache=True, nogil=True)
def _lab_f_inv(f):
    cube = f * f * f
    if cube > 0.008856:
        return cube
    return (f - 16.0 / 116.0) / 7.787


@njit(cache=True, nogil=True)
def _linear(c):
    return _lookup(_DECODE, np.float64(c) * (_DECODE.size - 2))


@njit(cache=True, nogil=True)
def pixel_lab(r, g, b):
    """``(L*, a*, b*)`` of one sRGB pixel (float64)."""
    matrix = _XYZ_FROM_RGB
    r, g, b = _linear(r), _linear(g), _linear(b)
    fx = _lab_f((matrix[0, 0] * r + matrix[0, 1] * g + matrix[0, 2] * b) / _WHITE_D65[0])
    fy = _lab_f((matrix[1, 0] * r + matrix[1, 1] * g + matrix[1, 2] * b) / _WHITE_D65[1])
    fz = _lab_f((matrix[2, 0] * r + matrix[2, 1] * g + matrix[2, 2] * b) / _WHITE_D65[2])
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


@njit(cache=True, nogil=True)
def pixel_lightness(r, g, b):
    """L* of one sRGB pixel (float64)."""
    matrix = _XYZ_FROM_RGB
    r, g, b = _linear(r), _linear(g), _linear(b)
    return 116.0 * _lab_f((matrix[1, 0] * r + matrix[1, 1] * g + matrix[1, 2] * b) / _WHITE_D65[1]) - 16.0


@njit(cache=True, nogil=True)
def pixel_rgb(lightness, a, b):
    """sRGB of one L*a*b* pixel, clipped to ``[0, 1]`` (float64)."""
    fy = (np.float64(lightness) + 16.0) / 116.0
    fx = np.float64(a) / 500.0 + fy
    fz = fy - np.float64(b) / 200.0
    x = _lab_f_inv(fx) * _WHITE_D65[0]
    y = _lab_f_inv(fy) * _WHITE_D65[1]
    z = max(_lab_f_inv(fz), 0.0) * _WHITE_D65[2]
    matrix = _RGB_FROM_XYZ
    scale = _ENCODE.size - 2
    red = _lookup(_ENCODE, (matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2] * z) * scale)
    green = _lookup(_ENCODE, (matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2] * z) * scale)
    blue = _lookup(_ENCODE, (matrix[2, 0] * x + matrix[2, 1] * y + matrix[2, 2] * z) * scale)
    return red, green, blue


@njit(cache=True, nogil=True)
def rgb_to_lab_into(rgb, out):
    """:func:`rgb_to_lab` of ``rgb`` (h, w, 3) into ``out`` (h, w, 3) float32."""
    for y in range(rgb.shape[0]):
        for x in range(rgb.shape[1]):
            lightness, a, b = pixel_lab(rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2])
            out[y, x, 0] = lightness
            out[y, x, 1] = a
            out[y, x, 2] = b


@njit(cache=True, nogil=True)
def rgb_to_lightness_into(rgb, out):
    """L* of ``rgb`` (h, w, 3) into ``out`` (h, w, 1) float32."""
    for y in range(rgb.shape[0]):
        for x in range(rgb.shape[1]):
            out[y, x, 0] = pixel_lightness(rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2])


@njit(cache=True, nogil=True)
def lab_to_rgb_into(lab, out):
    """:func:`lab_to_rgb` of ``lab`` (h, w, 3) into ``out`` (h, w, 3) float32."""
    for y in range(lab.shape[0]):
        for x in range(lab.shape[1]):
            red, green, blue = pixel_rgb(lab[y, x, 0], lab[y, x, 1], lab[y, x, 2])
            out[y, x, 0] = red
            out[y, x, 1] = green
            out[y, x, 2] = blue
