"""Donor search in the high-pass (texture) layer: real nearby skin for a hole's pores.

Two stages on the texture layer (see :mod:`.freqsplit`):

1. **Block offset**. One translation ``d`` for the whole hole, chosen among all offsets
   within ``radius`` whose shifted hole lies on clean skin, minimising the weighted squared
   difference between the texture around and inside the hole and the texture at ``p + d``
   (a masked template match, summed directly with an early exit once an offset can no
   longer win). A single offset keeps the donor texture coherent: a pore is copied whole,
   not stitched from pixels of different pores.
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

import numpy as np

from .ahead_of_time import njit
from .labels import mask_box, mask_pixels
from .tuning import DONOR_IMPROVEMENT, DONOR_MIN_KNOWN_SHARE

__all__ = ["donor_high_pass", "donor_into", "valid_sources"]


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
    excluded = np.ascontiguousarray(excluded, dtype=bool)
    sources = np.empty(excluded.shape, bool)
    _valid_sources_into(excluded, max(0, int(patch_radius)), sources)
    return sources


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

    Raises
    ------
    ValueError
        When target pixels exist but no pixel of the crop is clean.
    """
    high = np.ascontiguousarray(high, dtype=np.float32)
    single_channel = high.ndim == 2
    if single_channel:
        high = high[:, :, None]
    hole = np.ascontiguousarray(hole, dtype=bool)
    avoid = np.zeros(hole.shape, bool) if avoid is None else np.ascontiguousarray(avoid, dtype=bool)
    if guide_weight is None:
        guide_weight = np.zeros(hole.shape, np.float32)
    guide_weight = np.ascontiguousarray(guide_weight, dtype=np.float32)
    targets = hole if targets is None else np.ascontiguousarray(targets & hole, dtype=bool)
    offsets = np.zeros(hole.shape + (2,), dtype=np.int32)
    donor = high.copy()
    if not donor_into(high, hole, avoid, guide_weight, targets, int(radius), int(patch_radius),
                      int(iterations), int(seed), donor, offsets):  # fmt: skip
        raise ValueError("no clean pixel in the crop to take texture from")
    return (donor[:, :, 0] if single_channel else donor), offsets


@njit(cache=True, nogil=True)
def donor_into(high, hole, avoid, guide_weight, targets, radius, patch_radius, iterations, seed,
               donor, offsets):  # fmt: skip
    """:func:`donor_high_pass` into ``donor`` (a copy of ``high``, (H, W, C)) and ``offsets``
    (zeros, (H, W, 2) int32); returns False when target pixels exist but no pixel is clean."""
    height, width = hole.shape
    ys, xs = mask_pixels(targets)
    if ys.size == 0:
        return True
    excluded = np.empty((height, width), np.bool_)
    weight = np.empty((height, width), np.float32)
    for y in range(height):
        for x in range(width):
            excluded[y, x] = hole[y, x] or avoid[y, x]
            if hole[y, x]:
                weight[y, x] = min(max(guide_weight[y, x], np.float32(0.0)), np.float32(1.0))
            else:
                weight[y, x] = np.float32(0.0) if excluded[y, x] else np.float32(1.0)
    sources = np.empty((height, width), np.bool_)
    _valid_sources_into(excluded, patch_radius, sources)
    if not sources.any():
        _valid_sources_into(excluded, 0, sources)
        if not sources.any():
            return False
    guide = np.ascontiguousarray(high[:, :, 0])
    found, block_dy, block_dx = _block_offset(guide, weight, sources, targets, ys, xs, radius,
                                              patch_radius)  # fmt: skip
    if not found:
        # No offset within reach moves the whole hole onto clean skin: start each pixel
        # at its nearest clean source and let PatchMatch improve from there.
        _nearest_source_offsets(sources, ys, xs, offsets)
        iterations = max(iterations, 2)
    else:
        for k in range(ys.size):
            offsets[ys[k], xs[k], 0] = block_dy
            offsets[ys[k], xs[k], 1] = block_dx
    if iterations > 0:
        _patchmatch(guide, weight, sources, targets, ys, xs, offsets, radius, patch_radius,
                    iterations, seed)  # fmt: skip
    _copy_from_offsets(high, ys, xs, offsets, donor)
    return True


@njit(cache=True, nogil=True)
def _valid_sources_into(excluded, patch_radius, out):
    """Erosion of the clean pixels by a square patch, with nothing clean beyond the crop."""
    height, width = excluded.shape
    across = np.zeros((height, width), np.bool_)
    for y in range(height):
        run = 0  # clean pixels in a row up to x
        for x in range(width):
            run = 0 if excluded[y, x] else run + 1
            if run >= 2 * patch_radius + 1:
                across[y, x - patch_radius] = True
    out[:] = False
    for x in range(width):
        run = 0
        for y in range(height):
            run = run + 1 if across[y, x] else 0
            if run >= 2 * patch_radius + 1:
                out[y - patch_radius, x] = True


@njit(cache=True, nogil=True)
def _block_offset(guide, weight, sources, targets, ys, xs, radius, patch_radius):
    """The offset ``(dy, dx)`` whose shifted targets lie wholly on ``sources`` and whose
    texture best matches the weighted texture around and inside the targets (the band: the
    targets grown by the patch radius, whose shifted box must stay in the crop); a mild
    preference goes to near donors (skin changes slowly across a face) and ties to the
    nearer ring of offsets, then the first in raster order. Returns ``(found, dy, dx)``.
    """
    height, width = guide.shape
    box = mask_box(targets)
    by0, by1 = max(0, box[0] - patch_radius), min(height, box[1] + 1 + patch_radius)
    bx0, bx1 = max(0, box[2] - patch_radius), min(width, box[3] + 1 + patch_radius)
    mask = np.empty((by1 - by0, bx1 - bx0), np.float32)
    total = _band_weights(targets, weight, patch_radius, by0, bx0, mask)
    n_band = 0
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if mask[i, j] > 0.0:
                n_band += 1
    # The band as flat indices into the guide, so a shift is one added number.
    flat = guide.ravel()
    band_at = np.empty(n_band, np.int64)
    band_w = np.empty(n_band, np.float64)
    band_v = np.empty(n_band, np.float64)
    k = 0
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if mask[i, j] > 0.0:
                band_at[k] = (by0 + i) * width + bx0 + j
                band_w[k] = mask[i, j]
                band_v[k] = guide[by0 + i, bx0 + j]
                k += 1
    # The targets as row runs, and per row the count of non-source pixels left of each x:
    # an offset is usable when no shifted run covers one (a check per run, not per pixel).
    blocked = np.zeros((height, width + 1), np.int32)
    for y in range(height):
        for x in range(width):
            blocked[y, x + 1] = blocked[y, x] + (0 if sources[y, x] else 1)
    run_y = np.empty(ys.size, np.int64)
    run_x0 = np.empty(ys.size, np.int64)
    run_x1 = np.empty(ys.size, np.int64)
    n_runs = 0
    for t in range(ys.size):
        if n_runs > 0 and run_y[n_runs - 1] == ys[t] and run_x1[n_runs - 1] == xs[t] - 1:
            run_x1[n_runs - 1] = xs[t]
        else:
            run_y[n_runs] = ys[t]
            run_x0[n_runs] = xs[t]
            run_x1[n_runs] = xs[t]
            n_runs += 1
    # Nearer offsets first, ring by ring (Chebyshev distance): the near-donor preference
    # makes an early offset a strong bound, so most farther ones stop summing after a few
    # pixels. Within a ring, raster order; ties go to the first offset met.
    dy_lo, dy_hi = max(-radius, -by0), min(radius, height - by1)
    dx_lo, dx_hi = max(-radius, -bx0), min(radius, width - bx1)
    best = np.inf
    found, best_dy, best_dx = False, 0, 0
    for ring in range(1, radius + 1):
        for dy in range(max(-ring, dy_lo), min(ring, dy_hi) + 1):
            edge_row = dy == -ring or dy == ring
            step = 1 if edge_row else 2 * ring
            for dx in range(-ring, ring + 1, step):
                if dx < dx_lo or dx > dx_hi:
                    continue
                cost = _block_cost(flat, band_at, band_w, band_v, blocked, run_y, run_x0, run_x1, n_runs,
                                   dy, dx, width, best, total)  # fmt: skip
                if cost < best:
                    best = cost
                    found, best_dy, best_dx = True, dy, dx
    return found, best_dy, best_dx


@njit(cache=True, nogil=True)
def _block_cost(flat, band_at, band_w, band_v, blocked, run_y, run_x0, run_x1, n_runs, dy, dx, width,
                best, total):  # fmt: skip
    """Penalised cost of one offset, or ``inf`` when its shifted targets leave the sources
    or it cannot beat ``best``."""
    for r in range(n_runs):
        row = run_y[r] + dy
        if blocked[row, run_x1[r] + dx + 1] != blocked[row, run_x0[r] + dx]:
            return np.inf
    penalty = 1.0 + 0.002 * (dy * dy + dx * dx)
    # Costs only grow: stop summing once this offset cannot beat the best so far.
    limit = best * total / penalty
    cost = 0.0
    shift = dy * width + dx
    for b in range(band_at.size):
        diff = band_v[b] - flat[band_at[b] + shift]
        cost += band_w[b] * diff * diff
        if cost > limit:
            return np.inf
    return cost / total * penalty


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
    min_known = DONOR_MIN_KNOWN_SHARE * area
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
                if cost < DONOR_IMPROVEMENT * costs[k]:
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
                if cost < DONOR_IMPROVEMENT * costs[k]:
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
