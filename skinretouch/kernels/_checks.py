"""Input checks shared by the public kernel wrappers (one place, one set of messages)."""

from __future__ import annotations

import numpy as np

__all__ = ["as_image", "as_mask", "as_optional_mask"]


def as_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return ``image`` as a C-contiguous ``(H, W, 3)`` float32 array (a copy only if needed).

    Integer images are not accepted: the pipeline boundary is float in ``[0, 1]``.
    """
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a float array in [0, 1], got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def as_mask(mask: np.ndarray, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a C-contiguous ``(H, W)`` bool array matching ``shape[:2]``."""
    array = np.asarray(mask)
    if array.shape != tuple(shape[:2]):
        raise ValueError(f"{name} must have shape {tuple(shape[:2])}, got {array.shape}")
    return np.ascontiguousarray(array, dtype=bool)


def as_optional_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    """Like :func:`as_mask`, with ``None`` meaning an all-false mask."""
    if mask is None:
        return np.zeros(shape[:2], dtype=bool)
    return as_mask(mask, shape, name)
