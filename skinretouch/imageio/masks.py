"""Mask images: every mask the project reads (``--mask``, reference masks) comes through here.

The rule, one for all masks
    A pixel is selected when its colour is non-zero and it is not fully transparent:
    ``max over the colour channels > 0``, and, when the image has an alpha channel (or a
    transparent palette entry), ``alpha > 0`` too. So values 1 and 100 select as well as
    255, an opaque black RGBA mask selects nothing, and a painted stroke on a transparent
    layer selects exactly the stroke.

Any bit depth and colour mode Pillow reads is accepted (1-bit, greyscale 8/16-bit,
greyscale+alpha, palette, RGB, RGBA); the photo formats' restrictions do not apply.

Masks the project writes (the ``.mask.png`` sidecar) are 8-bit greyscale PNGs, 255 where
pixels were replaced and 0 elsewhere, encoded by :func:`encode_mask_png`.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from ..errors import MaskError
from .registry import DEFAULT_MAX_PIXELS

__all__ = ["encode_mask_png", "mask_from_values", "read_mask"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ROWS_PER_BAND = 256  # rows laid out at once: a band, not a whole-photo copy of the mask


def mask_from_values(colour: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """The selection rule on decoded values.

    Parameters
    ----------
    colour : (H, W) or (H, W, C) ndarray
        Greyscale or colour values, any numeric or bool dtype.
    alpha : (H, W) ndarray, optional
        Opacity; 0 is fully transparent.

    Returns
    -------
    (H, W) bool ndarray
        True where the colour is non-zero and the pixel is not fully transparent.
    """
    colour = np.asarray(colour)
    selected = colour.any(axis=2) if colour.ndim == 3 else colour != 0
    if alpha is not None:
        selected &= np.asarray(alpha) != 0
    return selected


def read_mask(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a mask image and apply the module's rule.

    Parameters
    ----------
    path : path-like
        Any image Pillow reads.
    shape : (height, width), optional
        The size the mask must have (the photo's stored pixel grid).
    max_pixels : int
        Larger masks are refused before decoding (decompression bombs).

    Returns
    -------
    (H, W) bool ndarray

    Raises
    ------
    MaskError
        Missing or unreadable file, too many pixels, or a size other than ``shape``.
    """
    import io

    from PIL import Image

    from ..errors import InputError
    from ..safefs import read_regular_file

    try:
        data = read_regular_file(path)  # a FIFO or a device at the mask's name must not hang us
    except InputError as exc:
        raise MaskError(f"mask {path}: {exc}") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise MaskError(f"mask {path} is {width}x{height}, above the {max_pixels / 1e6:.0f} MP limit")
            colour, alpha = _decoded(image)
    except FileNotFoundError:
        raise MaskError(f"mask {path}: no such file") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MaskError(f"mask {path}: cannot read it as an image ({exc})") from None
    if shape is not None and colour.shape[:2] != tuple(shape):
        raise MaskError(
            f"mask {path} is {colour.shape[1]}x{colour.shape[0]} but the image is "
            f"{shape[1]}x{shape[0]} (stored pixel grid)"
        )
    return mask_from_values(colour, alpha)


def _decoded(image) -> tuple[np.ndarray, np.ndarray | None]:
    """(colour values, alpha or None) of an opened Pillow image, at its own depth."""
    image.load()
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        values = np.asarray(image)
        return values[..., :-1], values[..., -1]
    if image.mode not in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV: any non-zero channel counts
    return np.asarray(image), None


def encode_mask_png(mask: np.ndarray) -> bytes:
    """8-bit greyscale PNG of a bool mask: 255 where True, 0 elsewhere.

    Rows are unfiltered and deflated with zlib's run-length strategy: a mask is long runs
    of 0 and 255, which RLE codes as small as Pillow's default (level 6, adaptive filters)
    in a fraction of the time. Rows are fed to zlib a band at a time, so no second
    whole-photo buffer is made. Any PNG reader decodes the same pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be a non-empty (H, W) array, got shape {mask.shape}")
    height, width = mask.shape
    deflate = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    band = np.zeros((min(_ROWS_PER_BAND, height), width + 1), np.uint8)  # column 0: filter "None"
    compressed = []
    for top in range(0, height, _ROWS_PER_BAND):
        rows = mask[top : top + _ROWS_PER_BAND]
        np.multiply(rows, 255, out=band[: len(rows), 1:], casting="unsafe")
        compressed.append(deflate.compress(band[: len(rows)].data))
    compressed.append(deflate.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return b"".join(
        (_PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", b"".join(compressed)), _png_chunk(b"IEND", b""))
    )


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload), kind) + payload + struct.pack(">I", zlib.crc32(kind + payload))
