"""Mask images: every mask the project reads (``--mask``, reference masks) comes through here.

The rule, one for all masks
    A pixel is selected when its colour is non-zero and it is not fully transparent:
    ``max over the colour channels > 0``, and, when the image has an alpha channel (or a
    transparent palette entry), ``alpha > 0`` too. So values 1 and 100 select as well as
    255, an opaque black RGBA mask selects nothing, and a painted stroke on a transparent
    layer selects exactly the stroke.

Any bit depth and colour mode Pillow reads is accepted (1-bit, greyscale 8/16-bit,
greyscale+alpha, palette, RGB, RGBA); the photo formats' restrictions do not apply.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import MaskError
from .registry import DEFAULT_MAX_PIXELS

__all__ = ["mask_from_values", "read_mask"]


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
    from PIL import Image

    try:
        with Image.open(path) as image:
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
