"""Texture for large and clustered holes: real skin copied tile by tile, never twice.

The small-spot donor search (:mod:`.donor`) cannot serve a hole wider than its reach: with no
offset that moves the whole hole onto clean skin, its per-pixel fallback smears the nearest
ring pixels inward in streaks. Here the whole hole is copied as one block when clear skin
of its shape lies within reach; otherwise it is cut into square tiles of ``tile`` px, each
with its own block copy:

- **Order and offsets.** Onion peeling (the next tile is the one whose neighbourhood is most
  known: clean skin or tiles already filled); each tile takes the NEAREST offset that puts it
  wholly on clear skin (skin changes slowly across a face, so near skin matches best in
  tone of texture), the seed choosing among equally near ones. No band matching: texture
  is noise-like at this scale, and matching cost more than the whole fill.
- **No grid.** Each tile is copied with a margin of ``TILE_OVERLAP`` of its side, and the
  overlaps are cross-faded (raised cosine) with the variance kept: abutting tiles showed
  their borders wherever the texture band holds pores and lines several px across.
- **Structure-aware sources.** Pixels whose texture is an outlier against the crop's clean
  skin (beyond ``STRUCTURE_SIGMAS`` robust sigmas: hair, a nostril rim, a lid edge, a
  scratch) are grown by the patch radius and never copied.
- **One block first.** When clean skin as large as the hole lies within reach, the whole
  hole is one block copy (as for small spots): coherent, without tile borders.
- **No repeated patch.** A source pixel, once copied, is not a source again, so no skin
  appears twice in the fill (when that leaves no clean source, reuse is allowed).

Everything is a pure function of arrays (numba); inputs are trusted (the removal routes
check them).
"""

from __future__ import annotations

import numpy as np

from .ahead_of_time import njit
from .labels import mask_box

__all__ = ["STRUCTURE_SIGMAS", "structure_mask", "tiled_donor_into"]

STRUCTURE_SIGMAS = 3.5  # texture beyond this many robust sigmas of clean skin is structure
# Tiles overlap their neighbours by this share of their side, cross-faded: abutting copies of
# different skin showed a visible grid wherever the texture band holds pores and fine lines of
# several px (a 24 MP portrait at face scale 10).
TILE_OVERLAP = 0.25


@njit(cache=True, nogil=True)
def tiled_donor_into(texture, hole, avoid, tile, patch_radius, radius, seed, out):
    """Fill ``out`` (h, w) float32 with donor texture at the hole's pixels (0 elsewhere).

    Parameters
    ----------
    texture : (h, w, 1) float32
        High-pass L* over the crop (the hole's own values are ignored).
    hole, avoid : (h, w) bool
        Pixels to fill; pixels never copied from (other spots, protected features).
    tile : int
        Tile side in px.
    patch_radius : int
        Structure outliers are grown by this many px before they are excluded.
    radius : int
        Farthest offset searched, px.
    seed : int
        Offsets are the nearest clear ones; the seed picks among equally near ones.
    out : (h, w) float32
    """
    height, width = hole.shape
    blocked = structure_mask(texture, hole, avoid, patch_radius)
    excluded = blocked | hole
    out[:] = 0.0
    # First choice: the whole hole as one block from clean, structure-free skin (coherent,
    # no tile borders, nothing repeated); tiles only when no such block is within reach.
    found, dy, dx = _clear_offset(excluded, hole, radius, seed)
    if found:
        _copy(texture, hole, dy, dx, out, excluded)
        return
    used = np.zeros((height, width), np.bool_)
    known = ~hole
    box = mask_box(hole)
    n_ty = (box[1] - box[0]) // tile + 1
    n_tx = (box[3] - box[2]) // tile + 1
    pending = np.zeros((n_ty, n_tx), np.bool_)
    remaining = 0
    for y in range(box[0], box[1] + 1):
        for x in range(box[2], box[3] + 1):
            if hole[y, x] and not pending[(y - box[0]) // tile, (x - box[2]) // tile]:
                pending[(y - box[0]) // tile, (x - box[2]) // tile] = True
                remaining += 1
    overlap = max(1, int(tile * TILE_OVERLAP))
    blended = np.zeros((height, width), np.float32)
    weight_squares = np.zeros((height, width), np.float32)
    core = np.zeros((height, width), np.bool_)
    grown = np.zeros((height, width), np.bool_)
    step = 0
    while remaining > 0:
        ti, tj = _next_tile(pending, known, box, tile, patch_radius)
        y0, x0 = box[0] + ti * tile, box[2] + tj * tile
        y1, x1 = min(height, y0 + tile), min(width, x0 + tile)
        gy0, gx0 = max(0, y0 - overlap), max(0, x0 - overlap)
        gy1, gx1 = min(height, y1 + overlap), min(width, x1 + overlap)
        for y in range(gy0, gy1):
            for x in range(gx0, gx1):
                if hole[y, x]:
                    grown[y, x] = True
                    core[y, x] = y0 <= y < y1 and x0 <= x < x1
        # The tile with its overlap first (cross-faded with its neighbours, no seam); the bare
        # tile where skin that large is not clear; reuse and structure as the last resorts.
        targets = grown
        found, dy, dx = _clear_offset(excluded | used, grown, radius, seed + step)
        if not found:
            targets = core
            found, dy, dx = _clear_offset(excluded | used, core, radius, seed + step)
        if not found:  # every clear source was used: allow reuse, then structure
            found, dy, dx = _clear_offset(excluded, core, radius, seed + step)
        if not found:
            found, dy, dx = _clear_offset(hole | avoid, core, max(height, width), seed + step)
        if found:
            _blend(texture, targets, dy, dx, (y0, y1, x0, x1), (gy0, gy1, gx0, gx1), overlap, blended,
                   weight_squares, used)
        for y in range(y0, y1):
            for x in range(x0, x1):
                if hole[y, x]:
                    known[y, x] = True
        for y in range(gy0, gy1):  # only this tile's window was set
            for x in range(gx0, gx1):
                grown[y, x] = False
                core[y, x] = False
        pending[ti, tj] = False
        remaining -= 1
        step += 1
    # Tiles are independent skin (no source is copied twice), so their cross-fade keeps the
    # texture's variance when divided by the root of the summed squared weights (a plain
    # weighted mean would leave a fainter grid along the overlaps).
    for y in range(box[0], box[1] + 1):
        for x in range(box[2], box[3] + 1):
            if hole[y, x] and weight_squares[y, x] > 0.0:
                out[y, x] = blended[y, x] / np.sqrt(weight_squares[y, x])


@njit(cache=True, nogil=True)
def _blend(texture, targets, dy, dx, tile_box, grown_box, overlap, blended, weight_squares, mark):
    """Add texture[p + d] x w(p) to ``blended`` (and w^2 to ``weight_squares``) on the targets,
    which lie in ``grown_box`` (the tile and its overlap): w is 1 on the tile and falls as a
    raised cosine over ``overlap`` px outside it. The tile's own sources get marked in ``mark``
    (the faded overlap's may serve another tile: marking them left so little clear skin that
    tiles fell back to bare copies, with seams)."""
    y0, y1, x0, x1 = tile_box
    for y in range(grown_box[0], grown_box[1]):
        for x in range(grown_box[2], grown_box[3]):
            if targets[y, x]:
                weight = _fade(max(y0 - y, y - (y1 - 1), 0), overlap) * _fade(max(x0 - x, x - (x1 - 1), 0), overlap)
                blended[y, x] += weight * texture[y + dy, x + dx, 0]
                weight_squares[y, x] += weight * weight
                if y0 <= y < y1 and x0 <= x < x1:
                    mark[y + dy, x + dx] = True


@njit(cache=True, nogil=True)
def _fade(outside, overlap):
    """1 on the tile (``outside`` = 0), falling smoothly to near 0 ``overlap`` px beyond it."""
    if outside == 0:
        return 1.0
    return 0.5 * (1.0 + np.cos(np.pi * outside / (overlap + 1.0)))


@njit(cache=True, nogil=True)
def _copy(texture, targets, dy, dx, out, mark):
    """out[p] = texture[p + d] on the targets; the sources get marked in ``mark``."""
    for y in range(targets.shape[0]):
        for x in range(targets.shape[1]):
            if targets[y, x]:
                out[y, x] = texture[y + dy, x + dx, 0]
                mark[y + dy, x + dx] = True


@njit(cache=True, nogil=True)
def _clear_offset(excluded, targets, radius, seed):
    """The nearest offset (ring by ring, Chebyshev) moving every target onto a pixel off
    ``excluded`` and inside the crop; among a ring's clear offsets the seed picks one.
    Returns (found, dy, dx)."""
    height, width = excluded.shape
    blocked = np.zeros((height, width + 1), np.int32)  # per row, excluded pixels left of x
    for y in range(height):
        for x in range(width):
            blocked[y, x + 1] = blocked[y, x] + (1 if excluded[y, x] else 0)
    box = mask_box(targets)
    runs_y = []
    runs_x0 = []
    runs_x1 = []
    for y in range(box[0], box[1] + 1):
        x = box[2]
        while x <= box[3]:
            if targets[y, x]:
                start = x
                while x + 1 <= box[3] and targets[y, x + 1]:
                    x += 1
                runs_y.append(y)
                runs_x0.append(start)
                runs_x1.append(x)
            x += 1
    dy_lo, dy_hi = -box[0], height - 1 - box[1]
    dx_lo, dx_hi = -box[2], width - 1 - box[3]
    state = np.uint64(seed) * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
    for ring in range(1, radius + 1):
        count = 0
        chosen_dy, chosen_dx = 0, 0
        for dy in range(max(-ring, dy_lo), min(ring, dy_hi) + 1):
            edge_row = dy == -ring or dy == ring
            step = 1 if edge_row else 2 * ring
            for dx in range(-ring, ring + 1, step):
                if dx < dx_lo or dx > dx_hi:
                    continue
                clear = True
                for r in range(len(runs_y)):
                    row = runs_y[r] + dy
                    if blocked[row, runs_x1[r] + dx + 1] != blocked[row, runs_x0[r] + dx]:
                        clear = False
                        break
                if clear:
                    # Reservoir choice among the ring's clear offsets, from the seed.
                    count += 1
                    state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
                    if (state >> np.uint64(33)) % np.uint64(count) == 0:
                        chosen_dy, chosen_dx = dy, dx
        if count > 0:
            return True, chosen_dy, chosen_dx
    return False, 0, 0


@njit(cache=True, nogil=True)
def _uniform(offsets, hole):
    """True when every hole pixel has the same offset (one block was found)."""
    first = True
    dy, dx = 0, 0
    for y in range(hole.shape[0]):
        for x in range(hole.shape[1]):
            if not hole[y, x]:
                continue
            if first:
                dy, dx, first = offsets[y, x, 0], offsets[y, x, 1], False
            elif offsets[y, x, 0] != dy or offsets[y, x, 1] != dx:
                return False
    return True


@njit(cache=True, nogil=True)
def structure_mask(texture, hole, avoid, grow):
    """``avoid`` plus texture outliers of the clean skin (grown by ``grow`` px)."""
    height, width = hole.shape
    count = 0
    for y in range(height):
        for x in range(width):
            if not (hole[y, x] or avoid[y, x]):
                count += 1
    blocked = avoid.copy()
    if count < 16:
        return blocked
    values = np.empty(count, np.float32)
    k = 0
    for y in range(height):
        for x in range(width):
            if not (hole[y, x] or avoid[y, x]):
                values[k] = texture[y, x, 0]
                k += 1
    centre = np.median(values)
    sigma = 1.4826 * np.median(np.abs(values - centre)) + 1e-3
    for y in range(height):
        for x in range(width):
            if hole[y, x] or abs(texture[y, x, 0] - centre) <= STRUCTURE_SIGMAS * sigma:
                continue
            for yy in range(max(0, y - grow), min(height, y + grow + 1)):
                for xx in range(max(0, x - grow), min(width, x + grow + 1)):
                    blocked[yy, xx] = True
    return blocked


@njit(cache=True, nogil=True)
def _next_tile(pending, known, box, tile, grow):
    """The pending tile whose surround (grown by ``grow``) has the largest known share."""
    height, width = known.shape
    best_share = -1.0
    best_i, best_j = 0, 0
    for i in range(pending.shape[0]):
        for j in range(pending.shape[1]):
            if not pending[i, j]:
                continue
            y0, x0 = box[0] + i * tile - grow, box[2] + j * tile - grow
            y1, x1 = y0 + tile + 2 * grow, x0 + tile + 2 * grow
            good = 0
            total = 0
            for y in range(max(0, y0), min(height, y1)):
                for x in range(max(0, x0), min(width, x1)):
                    total += 1
                    if known[y, x]:
                        good += 1
            share = good / max(total, 1)
            if share > best_share:
                best_share, best_i, best_j = share, i, j
    return best_i, best_j
