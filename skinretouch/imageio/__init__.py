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
import sys
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
    "STORED_DEPTH",
    "STORED_DTYPE",
    "CorruptImage",
    "ImageFile",
    "UnsupportedFormat",
    "decode_image",
    "encode_image",
    "exif_orientation",
    "from_float",
    "from_float_consuming",
    "read_image",
    "supported_extensions",
    "to_float",
    "unit_floats",
    "write_image",
]

_MAX_VALUE = {8: 255, 16: 65535}
# The dtype of a photo of each bit depth, as decoded and stored.
STORED_DTYPE = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16)}
# The bit depth of stored integers of each dtype (the dtypes that are stored integers).
STORED_DEPTH = {dtype: depth for depth, dtype in STORED_DTYPE.items()}


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


def encode_image(image: ImageFile, pixels: np.ndarray, *, options: OutputConfig, consume: bool = False) -> bytes:
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
    consume : bool
        The caller drops ``pixels`` afterwards: the encoder may reorder its channels in
        place rather than copy the whole photo (a 100-megapixel photo's peak: +300 MB).

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
    writer = get_format(image.format).writer
    # Asked for only when wanted: a format registered from outside may have a writer of the
    # older (image, pixels, options) signature.
    if consume:
        return writer(image, np.ascontiguousarray(pixels), options, consume=True)
    return writer(image, np.ascontiguousarray(pixels), options)


def write_image(
    path: str | os.PathLike[str], image: ImageFile, pixels: np.ndarray, *, options: OutputConfig
) -> None:
    """:func:`encode_image` and write the result atomically to ``path``."""
    atomic_write_bytes(path, encode_image(image, pixels, options=options))


def unit_floats(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as float32 in [0, 1]: stored integers converted by :func:`to_float`, float32
    as it is (no copy; other floats as float32). For crops of a photo that may be either."""
    if pixels.dtype in STORED_DEPTH:
        return to_float(pixels)
    return np.asarray(pixels, dtype=np.float32)


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
        return np.zeros(pixels.shape, STORED_DTYPE[bit_depth])
    shape = pixels.shape
    # One saturating, rounding pass; OpenCV wants at most 4 channels, so fold them
    # into the rows of a 2-D view.
    flat = np.ascontiguousarray(pixels).reshape(shape[0], -1)
    depth = cv2.CV_8U if bit_depth == 8 else cv2.CV_16U
    out = cv2.multiply(flat, float(_MAX_VALUE[bit_depth]), dtype=depth)
    return out.reshape(shape)


# Rows converted at a time by :func:`from_float_consuming` (its scratch is this many rows).
_CONSUMING_BLOCK_ROWS = 64


def from_float_consuming(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """:func:`from_float` written over ``pixels``' own memory, which then shrinks to the result.

    The whole-photo float copy is 4 bytes a channel; a new integer copy beside it was the
    process's peak (a 100-megapixel photo: 1.2 GB of float and 0.3 GB of bytes at once), and
    the new copy's fresh pages cost more time than the conversion. Here the rows are converted
    a block at a time into the front of the float buffer (an integer row is at most half a
    float row, so a block never lands on rows still to be read), and the buffer is then
    reallocated down to the integer size: its tail goes back to the system, nothing is copied.

    ``pixels`` is consumed (its values are gone): the caller passes its only reference and
    drops it. Where anything else still refers to it (checked on the reference count, which
    views count in too), or it does not own a C-contiguous float32 buffer, this is
    :func:`from_float` and ``pixels`` is left as it was. The values are the same either way.
    """
    if bit_depth not in _MAX_VALUE:
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")
    # Three references: the caller's, this function's parameter, getrefcount's argument.
    owned = (pixels.dtype == np.float32 and pixels.flags.c_contiguous and pixels.flags.owndata
             and pixels.flags.writeable and pixels.size > 0 and sys.getrefcount(pixels) <= 3)  # fmt: skip
    if not owned:
        return from_float(pixels, bit_depth)
    shape = pixels.shape
    rows = shape[0]
    dtype = np.dtype(STORED_DTYPE[bit_depth])
    depth = cv2.CV_8U if bit_depth == 8 else cv2.CV_16U
    scale = float(_MAX_VALUE[bit_depth])
    flat = pixels.reshape(rows, -1)
    out = pixels.reshape(-1).view(np.uint8)[: pixels.size * dtype.itemsize].view(dtype).reshape(rows, -1)
    for start in range(0, rows, _CONSUMING_BLOCK_ROWS):
        stop = min(rows, start + _CONSUMING_BLOCK_ROWS)
        # Converted into scratch first: the first block's output overlaps its own input.
        out[start:stop] = cv2.multiply(flat[start:stop], scale, dtype=depth)
    del flat, out  # views of ``pixels``: the reallocation below needs them gone
    nbytes = pixels.size * dtype.itemsize
    pixels.resize(-(-nbytes // 4), refcheck=False)  # realloc: shrinks in place
    return pixels.view(np.uint8)[:nbytes].view(dtype).reshape(shape)


def supported_extensions() -> frozenset[str]:
    """Lower-case extensions, with the dot, of the formats read and written."""
    return registered_extensions()
