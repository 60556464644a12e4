"""Donor search in the high-pass (texture) layer: real nearby skin for a hole's pores.

Two stages on the texture layer (see :mod:`.freqsplit`):

1. **Block offset** (OpenCV). One translation ``d`` for the whole hole, chosen among all
   offsets within ``radius`` whose shifted hole lies on clean skin (an erosion of the clean
   pixels by the hole's shape), minimising the weighted squared difference between the
   texture around and inside the hole and the texture at ``p + d`` (a masked template
   match). A single offset keeps the donor texture coherent: a pore is copied whole, not
   stitched from pixels of different pores.
2. **PatchMatch refinement** (numba). A per-pixel offset field started at ``d`` and
   improved by propagation from neighbours and a shrinking random search (Barnes et al.
   2009), using patches of ``(2 * patch_radius + 1) ** 2`` pixels. A pixel moves away from
   ``d`` only when its patch carries enough known texture (ring pixels, or trusted pixels
   inside the hole given by ``guide_weight``) and the new match is clearly better. When no
   block offset is usable (a hole too large for its crop), every pixel starts at its
   nearest clean pixel and this stage always runs. The removal routes otherwise skip it:
   on planted spots it measured no better than the block alone.

Donor pixels never come from ``hole`` or ``avoid``: every source patch lies wholly on
pixels outside both.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit

__all__ = ["donor_high_pass", "valid_sources"]

# A pixel leaves the block offset only if its patch has at least this share of known
# texture and the new match costs at most this fraction of the old one.
_MIN_KNOWN_SHARE = 0.3
_IMPROVEMENT = 0.8


def valid_sources(excluded: np.ndarray, patch_radius: int) -> np.ndarray:
    """Pixels whose whole patch lies inside the crop and off ``excluded``.

    Parameters
    ----------
    excluded : (H, W) bool ndarray
        Hole and avoided pixels.
    patch_radius : int
        Patch half-width in pixels.

    Returns
    -------
    (H, W) bool ndarray
    """
    clean = (~excluded).astype(np.uint8)
    if patch_radius > 0:
        size = 2 * patch_radius + 1
        clean = cv2.erode(clean, np.ones((size, size), np.uint8), borderType=cv2.BORDER_CONSTANT,
                          borderValue=0)
    return clean.astype(bool)


def donor_high_pass(
    high: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    guide_weight: np.ndarray | None = None,
    targets: np.ndarray | None = None,
    radius: int = 24,
    patch_radius: int = 2,
    iterations: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Texture for each hole pixel copied from clean skin nearby.

    Parameters
    ----------
    high : (H, W) or (H, W, C) float32 ndarray
        Texture (high-pass) layer, e.g. L* units. Channel 0 drives the matching.
    hole : (H, W) bool ndarray
        Pixels that need donor texture.
    avoid : (H, W) bool ndarray or None
        Pixels that must not be copied (other spots, protected features).
    guide_weight : (H, W) float32 ndarray or None
        Trust in ``[0, 1]`` of ``high`` inside the hole as a guide for the match (1: the
        hole's own texture is genuine skin); 0 inside the hole when ``None``.
    targets : (H, W) bool ndarray or None
        The hole pixels that actually need donor texture (default: the whole hole); the
        others keep ``high`` and cost nothing.
    radius : int
        Largest donor offset, in pixels, along each axis.
    patch_radius : int
        Half-width of compared patches, in pixels.
    iterations : int
        PatchMatch sweeps; 0 keeps the single block offset (PatchMatch then runs only as a
        fallback, when no block offset within reach is wholly clean).
    seed : int
        Seed of the random search (same seed, same result).

    Returns
    -------
    donor : float32 ndarray, shape of ``high``
        The donor texture on the target pixels, ``high`` elsewhere.
    offsets : (H, W, 2) int32 ndarray
        ``(dy, dx)`` of each target pixel's source; ``(0, 0)`` elsewhere.
    """
    high = np.ascontiguousarray(high, dtype=np.float32)
    single_channel = high.ndim == 2
    if single_channel:
        high = high[:, :, None]
    hole = np.ascontiguousarray(hole, dtype=bool)
    height, width = hole.shape
    excluded = hole.copy()
    if avoid is not None:
        excluded |= avoid
    weight = (~excluded).astype(np.float32)
    if guide_weight is not None:
        weight[hole] = np.clip(guide_weight[hole], 0.0, 1.0)
    offsets = np.zeros((height, width, 2), dtype=np.int32)
    donor = high.copy()
    targets = hole if targets is None else np.ascontiguousarray(targets & hole, dtype=bool)
    ys, xs = np.nonzero(targets)
    if ys.size == 0:
        return (donor[:, :, 0] if single_channel else donor), offsets
    ys = ys.astype(np.int32)
    xs = xs.astype(np.int32)

    sources = valid_sources(excluded, patch_radius)
    if not sources.any():
        sources = valid_sources(excluded, 0)
        if not sources.any():
            raise ValueError("no clean pixel in the crop to take texture from")
    guide = np.ascontiguousarray(high[:, :, 0])
    block = _best_block_offset(guide, weight, sources, targets, radius, patch_radius)
    if block is None:
        # No offset within reach moves the whole hole onto clean skin: start each pixel
        # at its nearest clean source and let PatchMatch improve from there.
        _nearest_source_offsets(sources, ys, xs, offsets)
        iterations = max(iterations, 2)
    else:
        offsets[ys, xs, 0] = block[0]
        offsets[ys, xs, 1] = block[1]
    if iterations > 0:
        _patchmatch(guide, weight, sources, targets, ys, xs, offsets, radius, patch_radius,
                    iterations, seed)
    _copy_from_offsets(high, ys, xs, offsets, donor)
    return (donor[:, :, 0] if single_channel else donor), offsets


def _best_block_offset(guide, weight, sources, targets, radius, patch_radius):
    """The offset ``(dy, dx)`` whose shifted targets lie wholly on ``sources`` and whose
    texture best matches the weighted texture around and inside the targets; ``None`` when
    no offset within ``radius`` is usable.

    Both tests run over all offsets at once in OpenCV: the usable offsets are an erosion of
    ``sources`` by the targets' shape, the costs a masked template match of the band (the
    targets grown by the patch radius). The bookkeeping around them is jitted (it cost more
    than the two OpenCV calls as array expressions).
    """
    height, width = guide.shape
    box = _bounding_box(targets)
    ty0, ty1, tx0, tx1 = int(box[0]), int(box[1]), int(box[2]), int(box[3])
    shape = targets[ty0 : ty1 + 1, tx0 : tx1 + 1].view(np.uint8)
    usable = cv2.erode(sources.view(np.uint8), shape, anchor=(0, 0),
                       borderType=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
    # The band (targets grown by the patch radius) and its bounding box, clipped to the crop.
    by0, by1 = max(0, ty0 - patch_radius), min(height, ty1 + 1 + patch_radius)
    bx0, bx1 = max(0, tx0 - patch_radius), min(width, tx1 + 1 + patch_radius)
    mask = np.empty((by1 - by0, bx1 - bx0), np.float32)
    total = _band_weights(targets, weight, patch_radius, by0, bx0, mask)
    template = np.ascontiguousarray(guide[by0:by1, bx0:bx1])
    # Only placements within the radius matter: match inside that window of the crop.
    sy0, sy1 = max(0, by0 - radius), min(height, by1 + radius)
    sx0, sx1 = max(0, bx0 - radius), min(width, bx1 + radius)
    searched = np.ascontiguousarray(guide[sy0:sy1, sx0:sx1])
    # sum w (t - s)^2 = sum w t^2 - 2 sum (w t) s + sum w s^2: two plain correlations, which
    # cost half of OpenCV's masked TM_SQDIFF (which expands the same sums).
    weighted = mask * template
    costs = cv2.matchTemplate(searched * searched, mask, cv2.TM_CCORR)
    costs -= 2.0 * cv2.matchTemplate(searched, weighted, cv2.TM_CCORR)
    costs += float(np.dot(weighted.ravel(), template.ravel()))
    costs /= total
    found = _select_offset(costs, usable, radius, ty0, tx0, by0 - sy0, bx0 - sx0)
    if found[0] == 0:
        return None
    return int(found[1]), int(found[2])


@njit(cache=True, nogil=True)
def _bounding_box(mask):
    """``(y0, y1, x0, x1)`` inclusive of the true pixels of a non-empty 2-D mask."""
    height, width = mask.shape
    y0, y1, x0, x1 = height, -1, width, -1
    for y in range(height):
        for x in range(width):
            if mask[y, x]:
                y0 = min(y0, y)
                y1 = max(y1, y)
                x0 = min(x0, x)
                x1 = max(x1, x)
    return np.array([y0, y1, x0, x1], np.int64)


@njit(cache=True, nogil=True)
def _band_weights(targets, weight, patch_radius, by0, bx0, mask):
    """Fill ``mask`` (the band's box) with ``weight`` on the band, 0 off it; return the sum.

    When the band carries no weight at all, every band pixel weighs 1.
    """
    height, width = targets.shape
    mask[:] = 0.0
    band = np.zeros(mask.shape, np.bool_)
    for y in range(height):
        for x in range(width):
            if not targets[y, x]:
                continue
            for yy in range(max(0, y - patch_radius), min(height, y + patch_radius + 1)):
                for xx in range(max(0, x - patch_radius), min(width, x + patch_radius + 1)):
                    band[yy - by0, xx - bx0] = True
    total = 0.0
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if band[i, j]:
                mask[i, j] = weight[by0 + i, bx0 + j]
                total += mask[i, j]
    if total <= 0.0:
        total = 0.0
        for i in range(mask.shape[0]):
            for j in range(mask.shape[1]):
                mask[i, j] = 1.0 if band[i, j] else 0.0
                total += mask[i, j]
    return total


@njit(cache=True, nogil=True)
def _select_offset(costs, usable, radius, ty0, tx0, cost_y0, cost_x0):
    """Cheapest usable offset, with a mild preference for near donors (skin changes slowly
    across a face); ties go to the first in raster order. Returns ``(found, dy, dx)``."""
    height, width = usable.shape
    best = np.inf
    found = np.zeros(3, np.int64)
    for dy in range(-radius, radius + 1):
        cy = cost_y0 + dy
        uy = ty0 + dy
        if cy < 0 or cy >= costs.shape[0] or uy < 0 or uy >= height:
            continue
        for dx in range(-radius, radius + 1):
            cx = cost_x0 + dx
            ux = tx0 + dx
            if cx < 0 or cx >= costs.shape[1] or ux < 0 or ux >= width:
                continue
            if (dy == 0 and dx == 0) or usable[uy, ux] == 0:
                continue
            candidate = np.float64(costs[cy, cx]) * (1.0 + 0.002 * (dy * dy + dx * dx))
            if candidate < best:
                best = candidate
                found[0] = 1
                found[1] = dy
                found[2] = dx
    return found


@njit(cache=True, nogil=True)
def _nearest_source_offsets(sources, ys, xs, offsets):
    height, width = sources.shape
    for k in range(ys.size):
        y = ys[k]
        x = xs[k]
        found = False
        for r in range(1, max(height, width)):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if max(abs(dy), abs(dx)) != r:
                        continue
                    sy = y + dy
                    sx = x + dx
                    if 0 <= sy < height and 0 <= sx < width and sources[sy, sx]:
                        offsets[y, x, 0] = dy
                        offsets[y, x, 1] = dx
                        found = True
                        break
                if found:
                    break
            if found:
                break


@njit(cache=True, nogil=True)
def _patch_cost(guide, weight, y, x, dy, dx, patch_radius, min_known):
    height, width = guide.shape
    cost = 0.0
    total = 0.0
    for oy in range(-patch_radius, patch_radius + 1):
        ty = y + oy
        if ty < 0 or ty >= height or ty + dy < 0 or ty + dy >= height:
            continue
        for ox in range(-patch_radius, patch_radius + 1):
            tx = x + ox
            if tx < 0 or tx >= width or tx + dx < 0 or tx + dx >= width:
                continue
            w = weight[ty, tx]
            if w <= 0.0:
                continue
            diff = guide[ty, tx] - guide[ty + dy, tx + dx]
            cost += w * diff * diff
            total += w
    if total < min_known:
        return np.inf
    return cost / total


@njit(cache=True, nogil=True)
def _patchmatch(guide, weight, sources, hole, ys, xs, offsets, radius, patch_radius,
                iterations, seed):
    np.random.seed(seed)
    height, width = guide.shape
    area = (2 * patch_radius + 1) ** 2
    min_known = _MIN_KNOWN_SHARE * area
    n = ys.size
    costs = np.empty(n, dtype=np.float64)
    for k in range(n):
        costs[k] = _patch_cost(guide, weight, ys[k], xs[k], offsets[ys[k], xs[k], 0],
                               offsets[ys[k], xs[k], 1], patch_radius, min_known)
    for it in range(iterations):
        forward = it % 2 == 0
        step = -1 if forward else 1
        for i in range(n):
            k = i if forward else n - 1 - i
            y = ys[k]
            x = xs[k]
            # Propagation from the already visited neighbours.
            for axis in range(2):
                ny = y + step if axis == 0 else y
                nx = x + step if axis == 1 else x
                if ny < 0 or ny >= height or nx < 0 or nx >= width or not hole[ny, nx]:
                    continue
                dy = offsets[ny, nx, 0]
                dx = offsets[ny, nx, 1]
                sy = y + dy
                sx = x + dx
                if sy < 0 or sy >= height or sx < 0 or sx >= width or not sources[sy, sx]:
                    continue
                cost = _patch_cost(guide, weight, y, x, dy, dx, patch_radius, min_known)
                if cost < _IMPROVEMENT * costs[k]:
                    costs[k] = cost
                    offsets[y, x, 0] = dy
                    offsets[y, x, 1] = dx
            # Random search in a shrinking window around the current offset.
            span = radius
            while span >= 1:
                dy = offsets[y, x, 0] + np.random.randint(-span, span + 1)
                dx = offsets[y, x, 1] + np.random.randint(-span, span + 1)
                span //= 2
                if abs(dy) > radius or abs(dx) > radius:
                    continue
                sy = y + dy
                sx = x + dx
                if sy < 0 or sy >= height or sx < 0 or sx >= width or not sources[sy, sx]:
                    continue
                cost = _patch_cost(guide, weight, y, x, dy, dx, patch_radius, min_known)
                if cost < _IMPROVEMENT * costs[k]:
                    costs[k] = cost
                    offsets[y, x, 0] = dy
                    offsets[y, x, 1] = dx


@njit(cache=True, nogil=True)
def _copy_from_offsets(high, ys, xs, offsets, out):
    for k in range(ys.size):
        y = ys[k]
        x = xs[k]
        sy = y + offsets[y, x, 0]
        sx = x + offsets[y, x, 1]
        for c in range(high.shape[2]):
            out[y, x, c] = high[sy, sx, c]
