"""The photo's pixels as detection reads them: stored integers (uint8, uint16) or floats in [0, 1].

Detection reads a photo only through crops and shrunk copies. Reading those straight from
the decoded integers, each converted to floats as it is taken, spares a ``process`` the
whole-photo float copy: at 2048 x 2048 it cost 50 MB of fresh pages and about 50 ms before
detection could start (another 6-10 ms to turn it back into integers for the repair), and at
100 megapixels 1.2 GB (issue 17). A crop read here as floats equals the float photo's
(:func:`~skinretouch.imageio.to_float`), a shrunk copy is within 1e-5 of it; only the face
landmarker's preview is shrunk in bytes, so a preview pixel may differ by one level.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..imageio import STORED_DEPTH, unit_floats

__all__ = ["as_bytes", "checked_pixels", "mid_grey", "shrunk", "shrunk_unit_floats"]


def checked_pixels(image: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` C-contiguous: stored integers kept as they are, anything else
    as float32. A ValueError names any other shape."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype in STORED_DEPTH:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(image, dtype=np.float32)


def shrunk(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``pixels`` resampled to ``size`` ``(width, height)`` by area (OpenCV's ``INTER_AREA``),
    in their own type."""
    return cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)


def shrunk_unit_floats(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`shrunk` as float32 in [0, 1], to within 1e-5 of shrinking the float photo.

    Bytes are shrunk as 16-bit values (``v * 257``, exactly ``v / 255`` of 65535): averaged
    as bytes they would be rounded to whole levels again (0.29 of a level r.m.s.), while the
    16-bit copy is half the size of a float one.
    """
    if pixels.dtype == np.uint8:
        wide = np.multiply(pixels, np.uint16(257), dtype=np.uint16)
        return unit_floats(shrunk(wide, size))
    if pixels.dtype == np.uint16:
        return unit_floats(shrunk(pixels, size))
    return shrunk(unit_floats(pixels), size)


def as_bytes(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as uint8 RGB (what the face landmarker reads): floats rounded to the nearest
    level and clipped, 16-bit values to the nearest byte level, bytes as they are."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return np.clip(pixels * 255.0 + 0.5, 0, 255).astype(np.uint8)


def mid_grey(dtype: np.dtype) -> float:
    """Half of full scale in pixels of ``dtype`` (a neutral border)."""
    if dtype == np.uint8:
        return 128.0
    if dtype == np.uint16:
        return 32768.0
    return 0.5
