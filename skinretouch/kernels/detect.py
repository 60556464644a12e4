"""Spot-finding maps: local skin background, contrast regions and per-region measurements.

The idea: a blemish is a patch that differs from the skin *around it* (its ring) in
redness (a*), lightness (L) or yellowness (b*). The background is a Gaussian average of
the surrounding skin that skips pixels which are not skin, are protected, or already look
like a spot (normalised convolution, iterated), so a 12-px papule does not raise its own
background. Regions then flood downhill from strong seeds into weaker contrast, each
down to a share of its own peak, so a region follows the spot's outline instead of
being a disc, and two spots joined by a faint saddle stay two.

Lab planes are float32 as :func:`.color.rgb_to_lab` gives them for float RGB: L in [0, 100],
a*, b* roughly in [-128, 127]. Lengths are pixels at the working resolution.
"""

from __future__ import annotations

import cv2
import numpy as np

from .ahead_of_time import njit
from .blur import weighted_gaussian
from .labels import label_boxes, label_windows

__all__ = [
    "FEATURES",
    "fill_label_holes",
    "flood_labels",
    "normalized_blur",
    "region_features",
    "take_enclosed_skin",
]


def normalized_blur(planes: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian average of ``planes`` over the pixels with weight, ignoring the others.

    Parameters
    ----------
    planes : (H, W) or (H, W, C) float32
    weights : (H, W) float32 or bool
        Sample weights in [0, 1]; 0 excludes a pixel from every average.
    sigma : float
        Gaussian sigma, pixels.

    Returns
    -------
    ndarray, same shape as ``planes``, float32
        Where no weighted pixel lies within ~3 sigma the plain Gaussian average is used.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    return weighted_gaussian(planes, weights, sigma, min_weight=1e-3, empty="plain", approximate_wide=True)


def flood_labels(
    strength: np.ndarray,
    *,
    high: float,
    low: float,
    relative: float,
    merge: float = 0.7,
    allowed: np.ndarray | None = None,
    seedable: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """Seeded flooding: each spot grows downhill from its own peak, down to a share of it.

    Pixels are visited from the strongest down. One touching a region joins it (the one
    with the highest peak when it touches several) if it is at least ``relative`` times that
    region's peak and at least ``low``; one touching none starts a region if it is at least
    ``high``. So two spots joined by a faint saddle stay two regions, a blackhead does not
    spill into the pores around it, and a faint spot next to a strong one keeps its own
    outline (a watershed with a per-basin floor).

    Parameters
    ----------
    strength : (H, W) float32
        Contrast in threshold units.
    high, low : float
        Seed and absolute growth thresholds, ``low <= high``.
    relative : float
        Growth floor as a fraction of the region's peak, in [0, 1).
    merge : float
        Two regions meeting at a saddle at least ``merge`` times the lower one's peak are
        one region (texture bumps on one spot), in (0, 1].
    allowed : (H, W) bool, optional
        Pixels outside are never part of a region.
    seedable : (H, W) bool, optional
        Only these pixels can start a region (growth may cross the others).

    Returns
    -------
    labels : (H, W) int32
        0 outside regions, 1..count inside (8-connected), numbered by decreasing peak.
        Two regions may touch (along a watershed line).
    count : int
    """
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if not 0.0 <= relative < 1.0:
        raise ValueError(f"relative must be in [0, 1), got {relative}")
    strength = np.ascontiguousarray(strength, dtype=np.float32)
    h, w = strength.shape
    candidate = strength >= low
    if allowed is not None:
        candidate &= allowed.astype(bool)
    order = np.flatnonzero(candidate.ravel())
    # Stable sort on the negated strength: ties keep raster order (deterministic).
    order = order[np.argsort(-strength.ravel()[order], kind="stable")].astype(np.int64)
    can_seed = (
        np.ones(h * w, np.bool_) if seedable is None
        else np.ascontiguousarray(seedable, dtype=np.bool_).ravel()
    )
    labels = np.zeros(h * w, np.int32)
    peaks = np.zeros(order.size + 1, np.float32)
    parent = np.arange(order.size + 1, dtype=np.int32)
    count = _flood(strength.ravel(), order, can_seed, labels, peaks, parent, h, w,
                   np.float32(high), np.float32(relative), np.float32(merge))
    # Resolve merged regions to their roots and number them 1..n in order of first seed.
    roots = _roots(parent, count)
    # The distinct roots, ascending (np.unique would import numpy.ma: 10 ms of a start-up).
    unique_roots = np.flatnonzero(np.bincount(roots[1:], minlength=count + 1)).astype(np.int32)
    renumber = np.zeros(count + 1, np.int32)
    renumber[unique_roots] = np.arange(1, unique_roots.size + 1, dtype=np.int32)
    labels = renumber[roots[labels]]
    return labels.reshape(h, w), int(unique_roots.size)


def fill_label_holes(labels: np.ndarray, max_hole_px: int, *, in_place: bool = False) -> np.ndarray:
    """Fill small enclosed holes of each region with that region's label.

    A pustule's pale centre is not red nor dark, so growth can leave it out; it belongs to
    the spot. Holes larger than ``max_hole_px`` pixels are left alone.

    Parameters
    ----------
    labels : (H, W) int32
    max_hole_px : int
    in_place : bool
        Fill ``labels`` itself (a C-contiguous int32 array) and return it, for a caller
        that owns it: no copy of a whole-photo map.

    Returns
    -------
    (H, W) int32, a new array unless ``in_place``.
    """
    if in_place and not (labels.dtype == np.int32 and labels.flags.c_contiguous and labels.flags.writeable):
        raise ValueError("in_place needs a writeable C-contiguous int32 array")
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    if in_place:
        # Window by window around the labels (label_windows): a hole is enclosed by labels
        # of one window and lies inside it, and a background region that reaches a window's
        # edge reaches the clear margin around it, i.e. the background outside every label:
        # the same holes as on the whole map, each filled from the same pixel, without a
        # whole-map component map (at 100 MP: 0.26 s and 200 MB of scratch).
        largest = int(labels.max(initial=0))
        boxes = label_boxes(labels, largest) if largest > 0 else None
        if boxes is None:
            return labels
        for y0, y1, x0, x1 in label_windows(boxes, labels.shape):
            window = np.ascontiguousarray(labels[y0:y1, x0:x1])
            if _fill_holes_of(window, max_hole_px):
                labels[y0:y1, x0:x1] = window
        return labels
    out = labels.copy()
    _fill_holes_of(out, max_hole_px)
    return out


def take_enclosed_skin(labels: np.ndarray, gap_px: int, relative: float, max_hole_px: int) -> np.ndarray:
    """Give skin that spots enclose together to the nearest of them (a new array).

    The spots, each grown by ``gap_px``, may enclose background (a scab or pale crust that
    is neither red nor dark, ringed by inflamed skin). Each such hole whose area is at most
    ``relative`` times the spots' area around it and at most ``max_hole_px`` takes, with the
    gap between it and them, the label of the nearest spot pixel. Larger holes and the
    background outside are left alone.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    spots = labels > 0
    if not spots.any() or relative <= 0.0 or max_hole_px <= 0:
        return labels.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap_px + 1, 2 * gap_px + 1))
    grown = cv2.dilate(spots.view(np.uint8), disc).astype(bool)
    _, holes, stats, _ = cv2.connectedComponentsWithStats((~grown).view(np.uint8), connectivity=4)
    h, w = labels.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    enclosed = np.flatnonzero((x > 0) & (y > 0) & (x + bw < w) & (y + bh < h))
    enclosed = enclosed[enclosed > 0]
    out = labels.copy()
    _, groups = cv2.connectedComponents(grown.view(np.uint8), connectivity=8)
    spot_area = np.bincount(groups[spots], minlength=int(groups.max()) + 1)
    taken = np.zeros(holes.max() + 1, bool)
    for k in enclosed:
        # The pixel above a hole's first pixel is grown spot: a background pixel there
        # would belong to the same (4-connected) hole.
        first = x[k] + int(np.argmax(holes[y[k], x[k] : x[k] + bw[k]] == k))
        taken[k] = area[k] <= min(relative * spot_area[groups[y[k] - 1, first]], max_hole_px)
    if not taken.any():
        return out
    # Only around the taken holes: the spots ringing one lie within the gap of it.
    rows, cols = np.nonzero(taken[holes])
    y0, y1 = max(0, rows.min() - 2 * gap_px - 2), min(h, rows.max() + 2 * gap_px + 3)
    x0, x1 = max(0, cols.min() - 2 * gap_px - 2), min(w, cols.max() + 2 * gap_px + 3)
    hole = taken[holes[y0:y1, x0:x1]]
    near = spots[y0:y1, x0:x1]
    fill = hole | (grown[y0:y1, x0:x1] & ~near & cv2.dilate(hole.view(np.uint8), disc).astype(bool))
    # Nearest spot pixel of every other pixel (each spot pixel its own index).
    _, nearest = cv2.distanceTransformWithLabels((~near).view(np.uint8), cv2.DIST_L2, 3,
                                                 labelType=cv2.DIST_LABEL_PIXEL)  # fmt: skip
    label_of = np.zeros(int(nearest.max()) + 1, np.int32)
    window = out[y0:y1, x0:x1]
    label_of[nearest[near]] = window[near]
    window[fill] = label_of[nearest[fill]]
    return out


def _fill_holes_of(labels: np.ndarray, max_hole_px: int) -> bool:
    """:func:`fill_label_holes` on the whole of ``labels`` (C-contiguous int32) in place;
    whether any hole was filled."""
    background = (labels == 0).view(np.uint8)
    n, holes, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    h, w = labels.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    inner = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h) & (area <= max_hole_px)
    inner[0] = False
    if not inner.any():
        return False
    _fill_holes(labels, holes, inner)
    return True


# The ring's L SD is taken over its ``ring_measured`` pixels when they are at least this share of it
# (at a half a spot by a glasses rim, next to an eye, took its quiet skin side for its ring).
RING_SD_MIN_MEASURED = 0.6

# Column names of :func:`region_features`' rows.
FEATURES = (
    "area", "cx", "cy", "sxx", "syy", "sxy",
    "mean_dl", "mean_da", "mean_db", "min_dl", "max_dl", "max_da", "max_db",
    "peak", "plateau", "l_std",
    "ring_n", "ring_allowed", "ring_skin", "ring_l_std", "ring_mean_da",
    "hair_frac", "edge_grad", "x0", "y0", "x1", "y1",
    "core_dl", "core_da", "core_db", "ring_busy",
)
_F = {name: i for i, name in enumerate(FEATURES)}


def region_features(
    labels: np.ndarray,
    count: int,
    delta: np.ndarray,
    lightness: np.ndarray,
    strength: np.ndarray,
    *,
    allowed: np.ndarray,
    skin: np.ndarray,
    hair: np.ndarray,
    gradient: np.ndarray,
    ring_px: np.ndarray,
    busy_low: float = 0.45,
    busy_relative: float = 0.3,
    ring_measured: np.ndarray | None = None,
) -> np.ndarray:
    """Measure each labelled region and the ring of pixels around it.

    Parameters
    ----------
    labels : (H, W) int32
        Regions 1..count.
    count : int
    delta : (H, W, 3) float32
        Lab minus the local skin background (dL, da*, db*).
    lightness : (H, W) float32
        L, for the uniformity of a region.
    strength : (H, W) float32
        The contrast the regions were grown on (threshold units).
    allowed : (H, W) bool
        Skin that may hold a spot (not protected, skin-coloured).
    skin : (H, W) float32
        Skin likelihood in [0, 1].
    hair : (H, W) bool
        Hair-strand pixels.
    gradient : (H, W) float32
        Gradient magnitude of L (L units per pixel).
    ring_px : (count + 1,) float32
        Ring width per region (pixels); the ring is the pixels within that distance of the
        region that belong to no region.
    busy_low, busy_relative : float
        ``ring_busy`` is the fraction of allowed ring pixels whose strength is at least
        ``max(busy_low, busy_relative * peak)``: near 0 around an isolated spot, high
        around a piece cut out of a longer structure (a wrinkle, a shadow's edge).
    ring_measured : (H, W) bool, optional
        The pixels ``ring_l_std`` is measured on where they are at least
        ``RING_SD_MIN_MEASURED`` of the ring (the photo's skin, not the background or a black
        border beside it); by default, and in a ring with fewer of them, all its pixels.

    Returns
    -------
    (count + 1, len(FEATURES)) float64
        Row ``k`` describes region ``k`` (row 0 unused); columns as :data:`FEATURES`.
        Moments (sxx, syy, sxy) are central second moments in pixels squared; ``plateau``
        is the fraction of the region at >= 60 % of its peak strength; ``edge_grad`` the
        mean gradient on the region's boundary pixels.
    """
    labels = np.ascontiguousarray(labels, dtype=np.int32)
    feats = np.zeros((count + 1, len(FEATURES)), np.float64)
    if count == 0:
        return feats
    inside = (labels > 0).astype(np.uint8)
    # Nearest region pixel of every pixel, for the rings.
    dist, nearest = cv2.distanceTransformWithLabels(
        1 - inside, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    owner = np.zeros(int(nearest.max()) + 1, np.int32)
    owner[nearest[inside > 0]] = labels[inside > 0]
    ring_owner = owner[nearest]
    _region_features(
        labels,
        np.ascontiguousarray(delta, dtype=np.float32),
        np.ascontiguousarray(lightness, dtype=np.float32),
        np.ascontiguousarray(strength, dtype=np.float32),
        np.ascontiguousarray(allowed, dtype=np.uint8),
        np.ascontiguousarray(skin, dtype=np.float32),
        np.ascontiguousarray(hair, dtype=np.uint8),
        np.ascontiguousarray(gradient, dtype=np.float32),
        np.ones(labels.shape, np.uint8) if ring_measured is None
        else np.ascontiguousarray(ring_measured, dtype=np.uint8),
        dist.astype(np.float32),
        ring_owner,
        np.ascontiguousarray(ring_px, dtype=np.float32),
        np.float32(busy_low),
        np.float32(busy_relative),
        feats,
    )
    return feats


@njit(cache=True, nogil=True)
def _find(parent, k):
    root = k
    while parent[root] != root:
        root = parent[root]
    while parent[k] != root:  # path compression
        nxt = parent[k]
        parent[k] = root
        k = nxt
    return root


@njit(cache=True, nogil=True)
def _roots(parent, count):
    """The root of every region 0..count, resolved in order (one call: a Python loop over
    the regions cost 3 ms of each flood)."""
    roots = np.empty(count + 1, np.int32)
    for k in range(count + 1):
        roots[k] = _find(parent, k)
    return roots


@njit(cache=True, nogil=True)
def _flood(strength, order, can_seed, labels, peaks, parent, h, w, high, relative, merge):
    count = 0
    for idx in order:
        y = idx // w
        x = idx - y * w
        value = strength[idx]
        best = 0
        for dy in range(-1, 2):
            yy = y + dy
            if yy < 0 or yy >= h:
                continue
            for dx in range(-1, 2):
                xx = x + dx
                if (dy == 0 and dx == 0) or xx < 0 or xx >= w:
                    continue
                k = labels[yy * w + xx]
                if k == 0:
                    continue
                k = _find(parent, k)
                if best == 0:
                    best = k
                elif k != best:
                    # Two regions meet here. The lower one is only a bump on the higher
                    # one (texture on a plateau) when this saddle is close to its peak.
                    hi, lo = (best, k) if peaks[best] >= peaks[k] else (k, best)
                    if value >= merge * peaks[lo]:
                        parent[lo] = hi
                    best = hi
        if best > 0:
            if value >= relative * peaks[best]:
                labels[idx] = best
        elif value >= high and can_seed[idx]:
            count += 1
            labels[idx] = count
            peaks[count] = value
    return count


@njit(cache=True, nogil=True)
def _fill_holes(out, holes, inner):
    h, w = out.shape
    # Each hole takes the label of the first labelled pixel left of / above it.
    hole_label = np.zeros(inner.shape[0], np.int32)
    for y in range(h):
        for x in range(w):
            k = holes[y, x]
            if k > 0 and inner[k] and hole_label[k] == 0:
                if x > 0 and out[y, x - 1] > 0:
                    hole_label[k] = out[y, x - 1]
                elif y > 0 and out[y - 1, x] > 0:
                    hole_label[k] = out[y - 1, x]
    for y in range(h):
        for x in range(w):
            k = holes[y, x]
            if k > 0 and inner[k] and hole_label[k] > 0:
                out[y, x] = hole_label[k]


@njit(cache=True, nogil=True)
def _region_features(labels, delta, lightness, strength, allowed, skin, hair, gradient,
                     measured, dist, ring_owner, ring_px, busy_low, busy_relative, feats):
    h, w = labels.shape
    n = feats.shape[0]
    sum_l = np.zeros(n)
    sum_l2 = np.zeros(n)
    ring_l = np.zeros(n)
    ring_l2 = np.zeros(n)
    # The ring's lightness spread is measured on its ``measured`` pixels where it has enough of
    # them: beside a black border or the background, that step would otherwise count as busy
    # skin.
    skin_ring_l = np.zeros(n)
    skin_ring_l2 = np.zeros(n)
    skin_ring_n = np.zeros(n)
    edge_n = np.zeros(n)
    for k in range(1, n):
        feats[k, 9] = 1e9  # min_dl
        feats[k, 10] = -1e9  # max_dl
        feats[k, 11] = -1e9  # max_da
        feats[k, 12] = -1e9  # max_db
        feats[k, 23] = w
        feats[k, 24] = h
        feats[k, 25] = -1
        feats[k, 26] = -1
    # First pass: sums, extremes, bbox, ring.
    for y in range(h):
        for x in range(w):
            k = labels[y, x]
            if k > 0:
                f = feats[k]
                f[0] += 1
                f[1] += x
                f[2] += y
                dl = delta[y, x, 0]
                da = delta[y, x, 1]
                db = delta[y, x, 2]
                f[6] += dl
                f[7] += da
                f[8] += db
                if dl < f[9]:
                    f[9] = dl
                if dl > f[10]:
                    f[10] = dl
                if da > f[11]:
                    f[11] = da
                if db > f[12]:
                    f[12] = db
                s = strength[y, x]
                if s > f[13]:
                    f[13] = s
                lv = lightness[y, x]
                sum_l[k] += lv
                sum_l2[k] += lv * lv
                if hair[y, x]:
                    f[21] += 1
                if x < f[23]:
                    f[23] = x
                if y < f[24]:
                    f[24] = y
                if x > f[25]:
                    f[25] = x
                if y > f[26]:
                    f[26] = y
                boundary = (
                    x == 0 or y == 0 or x == w - 1 or y == h - 1
                    or labels[y, x - 1] != k or labels[y, x + 1] != k
                    or labels[y - 1, x] != k or labels[y + 1, x] != k
                )
                if boundary:
                    f[22] += gradient[y, x]
                    edge_n[k] += 1
            else:
                k = ring_owner[y, x]
                if k > 0 and dist[y, x] <= ring_px[k]:
                    f = feats[k]
                    f[16] += 1
                    lv = lightness[y, x]
                    if allowed[y, x]:
                        f[17] += 1
                    if measured[y, x]:
                        skin_ring_n[k] += 1
                        skin_ring_l[k] += lv
                        skin_ring_l2[k] += lv * lv
                    f[18] += skin[y, x]
                    ring_l[k] += lv
                    ring_l2[k] += lv * lv
                    f[20] += delta[y, x, 1]
    for k in range(1, n):
        f = feats[k]
        a = f[0]
        if a > 0:
            f[1] /= a
            f[2] /= a
            f[6] /= a
            f[7] /= a
            f[8] /= a
            m = sum_l[k] / a
            f[15] = np.sqrt(max(sum_l2[k] / a - m * m, 0.0))
            f[21] /= a
        if edge_n[k] > 0:
            f[22] /= edge_n[k]
        r = f[16]
        if r > 0:
            on_skin = skin_ring_n[k]
            if on_skin >= RING_SD_MIN_MEASURED * r:
                m = skin_ring_l[k] / on_skin
                f[19] = np.sqrt(max(skin_ring_l2[k] / on_skin - m * m, 0.0))
            else:
                m = ring_l[k] / r
                f[19] = np.sqrt(max(ring_l2[k] / r - m * m, 0.0))
            f[17] /= r
            f[18] /= r
            f[20] /= r
    # Second pass: central moments and plateau.
    for y in range(h):
        for x in range(w):
            k = labels[y, x]
            if k > 0:
                f = feats[k]
                dx = x - f[1]
                dy = y - f[2]
                f[3] += dx * dx
                f[4] += dy * dy
                f[5] += dx * dy
                if strength[y, x] >= 0.6 * f[13]:
                    f[14] += 1
                    f[27] += delta[y, x, 0]
                    f[28] += delta[y, x, 1]
                    f[29] += delta[y, x, 2]
    for k in range(1, n):
        f = feats[k]
        a = f[0]
        if a > 0:
            f[3] /= a
            f[4] /= a
            f[5] /= a
            if f[14] > 0:
                f[27] /= f[14]
                f[28] /= f[14]
                f[29] /= f[14]
            f[14] /= a
    # Third pass: how busy the ring is, now that each region's peak is known.
    allowed_ring = np.zeros(n)
    for y in range(h):
        for x in range(w):
            if labels[y, x] == 0:
                k = ring_owner[y, x]
                if k > 0 and dist[y, x] <= ring_px[k] and allowed[y, x]:
                    allowed_ring[k] += 1
                    if strength[y, x] >= max(busy_low, busy_relative * feats[k, 13]):
                        feats[k, 30] += 1
    for k in range(1, n):
        if allowed_ring[k] > 0:
            feats[k, 30] /= allowed_ring[k]
