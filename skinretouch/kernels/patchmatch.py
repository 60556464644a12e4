"""PatchMatch inpainting (pypatchmatch) on a float crop.

pypatchmatch works on uint8 images and keeps a process-wide random state, so calls are
serialised by a lock and seeded each time: the same crop and seed give the same fill.
The C library releases the GIL, so other spots' numba kernels keep running meanwhile.
"""

from __future__ import annotations

import threading

import numpy as np

from ._checks import as_image, as_mask, as_optional_mask

__all__ = ["patchmatch_fill"]

_LOCK = threading.Lock()


def patchmatch_fill(
    image: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    patch_size: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """Fill ``hole`` with PatchMatch, copying patches from outside ``hole`` and ``avoid``.

    Parameters
    ----------
    image : (H, W, 3) float ndarray
        sRGB in ``[0, 1]``.
    hole : (H, W) bool ndarray
        Pixels to fill.
    avoid : (H, W) bool ndarray or None
        Pixels neither filled nor used as a source.
    patch_size : int
        pypatchmatch's patch radius (patches span ``2 * patch_size + 1`` px), 1 to 7.
    seed : int
        Seed of pypatchmatch's random search.

    Returns
    -------
    (H, W, 3) float32 ndarray
        ``image`` outside the hole (bit-identical); the fill, quantised to 1/255, inside.
    """
    import patchmatch  # imported here: loading the C library costs ~50 ms

    image = as_image(image)
    hole = as_mask(hole, image.shape, "hole")
    avoid = as_optional_mask(avoid, image.shape, "avoid") & ~hole
    if not 1 <= patch_size <= 7:
        raise ValueError(f"patch_size must be in 1..7, got {patch_size}")
    out = image.copy()
    if not hole.any():
        return out
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    with _LOCK:
        patchmatch.set_random_seed(int(seed))
        filled = patchmatch.inpaint(
            pixels,
            hole.astype(np.uint8) * 255,
            global_mask=avoid.astype(np.uint8) * 255 if avoid.any() else None,
            patch_size=int(patch_size),
        )
    out[hole] = filled[hole].astype(np.float32) / 255.0
    return out
