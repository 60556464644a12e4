"""Reading and writing photos without losing what photographers care about.

A photo is read into an :class:`ImageFile`: RGB pixels in the stored grid (orientation
NOT applied) at their own bit depth, plus the ICC profile, EXIF, XMP, alpha and
format-specific extras. :func:`encode_image` writes new pixels back in the same format,
size and bit depth with all of that carried over unchanged.

Formats register themselves (``jpeg``, ``png``, ``tiff`` modules, see
:mod:`.registry`); the format is sniffed from the file's first bytes, never from its
name. What each format carries, and what it does not, is documented in its module.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_write_bytes
from ..config import OutputConfig
from ..errors import CorruptImage, UnsupportedFormat
from ..safefs import read_regular_file
from . import jpeg, png, tiff  # noqa: F401  (each registers itself)
from .registry import (
    DEFAULT_MAX_PIXELS,
    PREFIX_BYTES,
    ImageFile,
    exif_orientation,
    find_format,
    get_format,
    registered_extensions,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "CorruptImage",
    "ImageFile",
    "UnsupportedFormat",
    "decode_image",
    "encode_image",
    "exif_orientation",
    "from_float",
    "read_image",
    "supported_extensions",
    "to_float",
    "write_image",
]

_MAX_VALUE = {8: 255, 16: 65535}
_DTYPE = {8: np.uint8, 16: np.uint16}


def read_image(
    path: str | os.PathLike[str],
    *,
    data: bytes | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImageFile:
    """Read a JPEG, PNG or TIFF photo (8/16-bit RGB, optional alpha).

    Parameters
    ----------
    path : path-like
        The file; its name is not used to guess the format.
    data : bytes, optional
        The file's content when the caller has already read it (saves a second read).
    max_pixels : int
        Images with more pixels are refused before decoding (decompression bombs).

    Raises
    ------
    UnsupportedFormat
        Not JPEG/PNG/TIFF, or a variant we do not process (greyscale, CMYK, palette,
        multi-page, camera raw, above ``max_pixels``...). The message says which.
    CorruptImage
        Empty, truncated or undecodable file.
    InputError
        The file cannot be read (missing, not a regular file, too large, permission
        denied...).
    """
    if data is None:
        data = read_regular_file(path)
    return decode_image(data, max_pixels=max_pixels)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageFile:
    """:func:`read_image` for a file's content already in memory."""
    fmt = find_format(bytes(data[:PREFIX_BYTES]))
    return fmt.reader(data, max_pixels)


def encode_image(image: ImageFile, pixels: np.ndarray, *, options: OutputConfig) -> bytes:
    """Encode ``pixels`` as a file like ``image``: same format, size, bit depth and metadata.

    Parameters
    ----------
    image : ImageFile
        What :func:`read_image` returned; its ICC, EXIF, XMP, alpha and extras are
        written unchanged.
    pixels : (H, W, 3) ndarray
        New RGB pixels, same shape and dtype as ``image.pixels``.
    options : OutputConfig
        JPEG quality/subsampling, PNG compress level, TIFF compression.

    Raises
    ------
    ValueError
        ``pixels`` does not match ``image.pixels`` in shape or dtype.
    """
    expected = image.pixels
    if pixels.shape != expected.shape or pixels.dtype != expected.dtype:
        raise ValueError(
            f"pixels must be {expected.shape} {expected.dtype} like the original, "
            f"got {pixels.shape} {pixels.dtype}"
        )
    return get_format(image.format).writer(image, np.ascontiguousarray(pixels), options)


def write_image(
    path: str | os.PathLike[str], image: ImageFile, pixels: np.ndarray, *, options: OutputConfig
) -> None:
    """:func:`encode_image` and write the result atomically to ``path``."""
    atomic_write_bytes(path, encode_image(image, pixels, options=options))


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels as float32 in [0, 1] (a new array, same shape)."""
    if pixels.dtype == np.uint8:
        scale = np.float32(1.0 / 255.0)
    elif pixels.dtype == np.uint16:
        scale = np.float32(1.0 / 65535.0)
    else:
        raise TypeError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
    return np.multiply(pixels, scale, dtype=np.float32)


def from_float(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float pixels in [0, 1] as uint8 (``bit_depth`` 8) or uint16 (16).

    Values are scaled, rounded to nearest (ties to even) and clipped to the integer
    range; NaN becomes 0. ``from_float(to_float(x), depth)`` returns ``x`` exactly.
    """
    if bit_depth not in _MAX_VALUE:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    if pixels.dtype not in (np.float32, np.float64):
        raise TypeError(f"pixels must be float32 or float64, got {pixels.dtype}")
    if pixels.size == 0:
        return np.zeros(pixels.shape, _DTYPE[bit_depth])
    shape = pixels.shape
    # One saturating, rounding pass; OpenCV wants at most 4 channels, so fold them
    # into the rows of a 2-D view.
    flat = np.ascontiguousarray(pixels).reshape(shape[0], -1)
    depth = cv2.CV_8U if bit_depth == 8 else cv2.CV_16U
    out = cv2.multiply(flat, float(_MAX_VALUE[bit_depth]), dtype=depth)
    return out.reshape(shape)


def supported_extensions() -> frozenset[str]:
    """Lower-case extensions, with the dot, of the formats read and written."""
    return registered_extensions()
