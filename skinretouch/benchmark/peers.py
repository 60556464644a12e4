"""Peer inpainting methods the bench compares against, run on the same masks.

Every peer is ``fn(rgb, mask) -> image``: ``rgb`` is (H, W, 3) uint8 RGB, ``mask`` is (H, W) bool
(True = pixels to replace); the result is uint8 or float in [0, 1] with the same shape. Pixels
outside the mask are kept. Work is done on a crop around each connected mask region, with a
margin, so that costs follow the spots and not the photo size (the way a retoucher would use
these tools on a spot).

Peers (BENCHMARK.md "Peers"):

- ``telea``, ``navier_stokes``: ``cv2.inpaint`` (radius 3 px), smooth diffusion fills.
- ``biharmonic``: ``skimage.restoration.inpaint_biharmonic`` (``channel_axis=-1``).
- ``patchmatch``: ``pypatchmatch`` (``patchmatch.patch_match.inpaint``, patch radius 3).
- ``patchmatch_clone_mixed``, ``patchmatch_clone_normal``: the PatchMatch fill pasted into the
  photo with ``cv2.seamlessClone`` (MIXED_CLONE keeps the stronger of both gradients, hence the
  blemish's own; NORMAL_CLONE takes the fill's gradients with the photo's boundary colours).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["PEERS", "available_peers", "region_windows", "run_peer"]

INPAINT_RADIUS_PX = 3
CROP_MARGIN_PX = 16  # context around each region's bounding box
PATCH_RADIUS = 3
CLONE_GROW_PX = 4  # px the seamlessClone mask extends past the hole

PeerFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def region_windows(mask: np.ndarray, margin: int = CROP_MARGIN_PX) -> list[tuple[slice, slice]]:
    """Crop windows (y, x slices) around each 8-connected region of ``mask``, ``margin`` px wider.

    Regions whose windows overlap are merged so every hole is filled once, with all its context.
    """
    mask = np.asarray(mask, dtype=bool)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    height, width = mask.shape
    boxes = []
    for label in range(1, count):
        x, y, w, h = stats[label, :4]
        boxes.append([max(0, y - margin), max(0, x - margin), min(height, y + h + margin),
                      min(width, x + w + margin)])  # fmt: skip
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    boxes[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return [(slice(y0, y1), slice(x0, x1)) for y0, x0, y1, x1 in boxes]


def _per_crop(fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> PeerFn:
    def peer(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        rgb = _check(rgb, mask)
        out = rgb.astype(np.float32) / 255.0
        for window in region_windows(mask):
            hole = mask[window]
            filled = _as_unit_float(fill(np.ascontiguousarray(rgb[window]), hole))
            out[window][hole] = filled[hole]
        return out

    return peer


def _telea(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(crop, hole.astype(np.uint8), INPAINT_RADIUS_PX, cv2.INPAINT_TELEA)


def _navier_stokes(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(crop, hole.astype(np.uint8), INPAINT_RADIUS_PX, cv2.INPAINT_NS)


def _biharmonic(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
    from skimage.restoration import inpaint_biharmonic

    return inpaint_biharmonic(crop.astype(np.float64) / 255.0, hole, channel_axis=-1)


def _patchmatch(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
    import patchmatch.patch_match as pm

    return pm.inpaint(crop, hole.astype(np.uint8), patch_size=PATCH_RADIUS)


def _patchmatch_clone(flag: int):
    def fill(crop: np.ndarray, hole: np.ndarray) -> np.ndarray:
        source = _patchmatch(crop, hole)
        # seamlessClone keeps the destination near its mask's edge: on a mask as tight as the
        # hole, NORMAL_CLONE returns almost the blemished input. Cloning over a slightly wider
        # mask (the usual way it is used) lets the fill through; only hole pixels are kept.
        grown = cv2.dilate(hole.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=CLONE_GROW_PX)
        clone_mask = grown * np.uint8(255)
        # It places the source's masked bounding box centred on ``center``: the box's own centre
        # keeps the fill in place (the margin keeps the mask off the crop border).
        x, y, w, h = cv2.boundingRect(clone_mask)
        center = (x + w // 2, y + h // 2)
        return cv2.seamlessClone(source, crop, clone_mask, center, flag)

    return fill


PEERS: dict[str, PeerFn] = {
    "telea": _per_crop(_telea),
    "navier_stokes": _per_crop(_navier_stokes),
    "biharmonic": _per_crop(_biharmonic),
    "patchmatch": _per_crop(_patchmatch),
    "patchmatch_clone_mixed": _per_crop(_patchmatch_clone(cv2.MIXED_CLONE)),
    "patchmatch_clone_normal": _per_crop(_patchmatch_clone(cv2.NORMAL_CLONE)),
}


def available_peers() -> list[str]:
    """Names of the peers whose libraries import here (pypatchmatch is optional)."""
    names = []
    for name in PEERS:
        if name.startswith("patchmatch"):
            try:
                import patchmatch.patch_match  # noqa: F401
            except ImportError:
                continue
        names.append(name)
    return names


def run_peer(name: str, rgb: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """Run one peer; return its result and its removal time in milliseconds."""
    started = time.perf_counter()
    result = PEERS[name](rgb, mask)
    return result, (time.perf_counter() - started) * 1000.0


def _check(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if mask.shape != rgb.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {rgb.shape[:2]}")
    return np.ascontiguousarray(rgb)


def _as_unit_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image, 0.0, 1.0).astype(np.float32)
