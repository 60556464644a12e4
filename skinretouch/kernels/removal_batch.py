"""Removal of many small spots of one photo by frequency separation, in one jitted call.

The pipeline gives each of its threads one call with its share of a photo's small spots.
All of the per-spot work (cutting the crop, :func:`.removal.remove_freqsplit`'s fill, the
texture check) runs without the GIL and with no Python between spots: a Python call per
spot left the two cores waiting on each other for the GIL.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_image, as_mask
from .ahead_of_time import njit
from .color import pixel_lightness, rgb_to_lab_into
from .removal import freqsplit_fill_into, route_taps
from .texture import ratio_around, ratio_reach

__all__ = ["batch_fill_compiled", "fill_spots"]

# Integer photos: the factor that makes a stored value a float in [0, 1] (as to_float has it).
_UNIT = {np.dtype(np.uint8): np.float32(1.0 / 255.0), np.dtype(np.uint16): np.float32(1.0 / 65535.0)}


def fill_spots(
    image: np.ndarray,
    boxes: np.ndarray,
    holes: list[np.ndarray],
    avoid: np.ndarray,
    *,
    seeds: np.ndarray,
    scale: float,
    margin: int,
    min_ratio_area: int,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Fill each spot on its own crop, as :func:`.removal.remove_freqsplit` would.

    Parameters
    ----------
    image : (H, W, 3) float32, uint8 or uint16 ndarray
        The whole photo, sRGB in ``[0, 1]``, or its stored integers: each crop is then
        converted as :func:`skinretouch.imageio.to_float` converts (the same float32 values),
        so a 100-megapixel photo need not be held as floats (1.2 GB) while its spots are filled.
    boxes : (n, 4) int ndarray
        Each spot's ``(x, y, width, height)``.
    holes : list of n (height, width) bool ndarrays
        Each spot's pixels within its box.
    avoid : (H, W) bool ndarray
        Pixels never used as texture donors (protected features and every spot); each
        spot's own pixels are taken out of it for its own fill.
    seeds : (n,) int ndarray
        Seed of each spot's donor search.
    scale : float
        Face-scale factor.
    margin : int
        Context in px around each box (:func:`.removal.crop_margin`).
    min_ratio_area : int
        Holes smaller than this get no texture ratio (``nan``): too few pixels to judge.

    Returns
    -------
    filled : list of n (height, width, 3) float32 ndarrays
        Each box after the fill: equal to ``image`` outside the spot's hole.
    ratios : (n,) float64 ndarray
        The fill's texture ratio against the ring around it
        (:func:`.texture.texture_ratio`), ``nan`` when not judged.
    """
    if image.dtype in _UNIT:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
        image, unit = np.ascontiguousarray(image), _UNIT[image.dtype]
    else:
        image, unit = as_image(image), np.float32(1.0)
    avoid = as_mask(avoid, image.shape, "avoid")
    boxes = np.ascontiguousarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(holes) != boxes.shape[0] or len(seeds) != boxes.shape[0]:
        raise ValueError(f"{boxes.shape[0]} boxes need as many holes and seeds")
    for (_, _, width, height), hole in zip(boxes, holes):
        if hole.shape != (height, width):
            raise ValueError(f"a hole of shape {hole.shape} does not fit its box {width}x{height}")
    sizes = boxes[:, 2] * boxes[:, 3]
    starts = np.zeros(boxes.shape[0] + 1, np.int64)
    np.cumsum(sizes, out=starts[1:])
    holes_flat = np.concatenate([np.ravel(hole) for hole in holes]).astype(bool) if holes else np.zeros(0, bool)
    filled_flat = np.empty((int(starts[-1]), 3), np.float32)
    ratios = np.empty(boxes.shape[0], np.float64)
    ring_px, reach = ratio_reach(scale)
    _fill_spots(image, unit, avoid, boxes, starts, holes_flat, np.ascontiguousarray(seeds, dtype=np.int64),
                int(margin), float(scale), *route_taps(float(scale)), ring_px, reach, int(min_ratio_area),
                filled_flat, ratios)  # fmt: skip
    filled = [
        filled_flat[starts[k] : starts[k + 1]].reshape(int(boxes[k, 3]), int(boxes[k, 2]), 3)
        for k in range(boxes.shape[0])
    ]
    return filled, ratios


def batch_fill_compiled() -> bool:
    """Whether the batch fill is compiled for this source, ahead of time or in numba's cache:
    every photo runs it, and it is the longest kernel to compile (``skinretouch compile``).
    True when numba's cache cannot be read (nothing to warn about)."""
    if _fill_spots.compiled_ahead_of_time:
        return True
    from ._cache_loading import cached_signatures  # imports numba, which the JIT needs anyway

    return cached_signatures(_fill_spots.dispatcher) != 0


@njit(cache=True, nogil=True)
def _fill_spots(image, unit, avoid, boxes, starts, holes_flat, seeds, margin, scale, tone_taps, texture_taps,
                share_taps, energy_taps, ratio_taps, ring_px, reach, min_ratio_area, filled_flat,
                ratios):  # fmt: skip
    height, width = avoid.shape
    for k in range(boxes.shape[0]):
        x, y, w, h = boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3]
        x0, y0 = max(0, x - margin), max(0, y - margin)
        x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
        # A float copy of the photo's pixels (the fill below writes into it): value times
        # ``unit`` in float32, as to_float computes it (1.0 for a float photo: unchanged).
        crop = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        for i in range(y1 - y0):
            for j in range(x1 - x0):
                for c in range(3):
                    crop[i, j, c] = np.float32(image[y0 + i, x0 + j, c]) * unit
        hole = np.zeros((y1 - y0, x1 - x0), np.bool_)
        crop_avoid = avoid[y0:y1, x0:x1].copy()
        count = 0
        for i in range(h):
            for j in range(w):
                if holes_flat[starts[k] + i * w + j]:
                    hole[y - y0 + i, x - x0 + j] = True
                    crop_avoid[y - y0 + i, x - x0 + j] = False
                    count += 1
        lab = np.empty_like(crop)
        rgb_to_lab_into(crop, lab)
        # The fill reads only ``lab`` and writes only the hole's pixels: the crop takes it in
        # place (a second crop-sized copy was ~100 MB at 100 megapixels for the largest spots).
        filled = crop
        if 0 < count < hole.size:
            freqsplit_fill_into(crop, lab, hole, crop_avoid, scale, seeds[k], tone_taps, texture_taps, share_taps,
                            energy_taps, ratio_taps, filled)  # fmt: skip
        if count >= min_ratio_area:
            # The fill's L*: the crop's, converted anew only where the fill changed it.
            lightness = np.ascontiguousarray(lab[:, :, 0:1])
            for i in range(h):
                for j in range(w):
                    if hole[y - y0 + i, x - x0 + j]:
                        rgb = filled[y - y0 + i, x - x0 + j]
                        lightness[y - y0 + i, x - x0 + j, 0] = pixel_lightness(rgb[0], rgb[1], rgb[2])
            ratios[k] = ratio_around(lightness, hole, crop_avoid, ring_px, reach, ratio_taps)
        else:
            ratios[k] = np.nan
        for i in range(h):
            for j in range(w):
                for c in range(3):
                    filled_flat[starts[k] + i * w + j, c] = filled[y - y0 + i, x - x0 + j, c]
