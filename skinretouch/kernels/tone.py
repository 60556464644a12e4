"""The tone (low-frequency) layer of a hole: filled from clean skin around it, never from the hole.

A removal's tone layer must carry the skin's shading across the hole without any trace of the
blemish. Two things leaked the blemish into it before: a low-pass that saw the spot's pixels,
and a fill that continued the slope of the spot's faint halo (the sub-threshold tail of a
papule, the inflamed ring around real acne) inwards. Here, on a window around one hole:

1. **Clean low-pass**: a normalised Gaussian blur (sigma ``TONE_LOWPASS_SIGMA``) of the
   pixels outside the hole and off ``avoid`` only.
2. **Trend**: a quadratic surface per Lab channel fitted by weighted least squares to that
   low-pass on a ring ``TREND_RING`` wide around the hole. Re-weighting (Tukey) drops ring
   pixels far from the fit, and each ring pixel's weight grows with its distance from the
   hole, so the trend follows the wider clean skin rather than the halo next to the spot.
3. **Residual**: the low-pass minus the trend, known on the hole's boundary, is carried into
   the hole by a screened membrane (``(laplacian - k**2) r = 0``): it meets the boundary
   exactly (no seam), then fades towards the trend over ``TONE_DECAY`` px, so a red or dark
   ring is not copied into the middle of the hole.

tone = trend + residual: equal to the clean low-pass outside the hole.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_mask
from ._jit import sor_sweeps
from ._multigrid import screened_membrane_multigrid
from .ahead_of_time import njit
from .blur import gaussian_taps, masked_blur_into
from .labels import mask_box, mask_pixels
from .tuning import TONE_DECAY, TONE_LOWPASS_SIGMA, TREND_GAP, TREND_NEAR_WEIGHT, TREND_RING, TREND_TUKEY_DE

__all__ = ["tone_fill", "tone_fill_into"]

# A hole at least this many px across is relaxed by multigrid (:mod:`._multigrid`): plain
# sweeps over it cost about a sweep per px of extent (a second or two at 100 megapixels),
# while smaller holes converge in a few dozen (and keep exactly the values they had).
MULTIGRID_MIN_EXTENT = 64


def tone_fill(
    lab: np.ndarray,
    hole: np.ndarray,
    *,
    avoid: np.ndarray | None = None,
    scale: float = 1.0,
    lowpass_sigma: float = TONE_LOWPASS_SIGMA,
    ring: float = TREND_RING,
    near_weight: float = TREND_NEAR_WEIGHT,
    tukey_de: float = TREND_TUKEY_DE,
    decay: float = TONE_DECAY,
    gap: float = TREND_GAP,
    curved: bool = True,
    clamp: bool = True,
) -> np.ndarray:
    """The tone layer of ``lab`` (h, w, 3) float, filled over ``hole`` from the skin around it.

    Parameters
    ----------
    lab : (h, w, 3) float ndarray
        CIE Lab (any 3-channel layer works: the fill is per channel).
    hole : (h, w) bool ndarray
    avoid : (h, w) bool ndarray or None
        Pixels never used (other spots, protected features).
    scale : float
        Face-scale factor.
    lowpass_sigma, ring, near_weight, tukey_de, decay : float
        The fill's parameters (lengths in px at face scale; defaults from :mod:`.tuning`,
        see the module doc).

    Returns
    -------
    (h, w, 3) float32 ndarray
        The clean low-pass outside the hole, the filled tone inside.
    """
    lab = np.ascontiguousarray(lab, dtype=np.float32)
    if lab.ndim != 3 or lab.shape[2] != 3:
        raise ValueError(f"lab must be (h, w, 3), got {lab.shape}")
    hole = as_mask(hole, lab.shape, "hole")
    avoid = np.zeros(hole.shape, bool) if avoid is None else as_mask(avoid, lab.shape, "avoid")
    out = np.empty_like(lab)
    if not hole.any() or hole.all():
        out[:] = lab
        return out
    scale = float(scale)
    tone_fill_into(lab, hole, avoid & ~hole, gaussian_taps(lowpass_sigma * scale), ring * scale, near_weight,
                   tukey_de, decay * scale, gap * scale, curved, clamp, out)  # fmt: skip
    return out


@njit(cache=True, nogil=True)
def tone_fill_into(lab, hole, avoid, taps, ring, near_weight, tukey_de, decay, gap, curved, clamp, out):
    """:func:`tone_fill` into ``out``; ``taps`` are the low-pass's Gaussian taps, ``ring`` and
    ``decay`` in px."""
    height, width = hole.shape
    valid = np.empty((height, width), np.bool_)
    any_valid = False
    for y in range(height):
        for x in range(width):
            valid[y, x] = not (hole[y, x] or avoid[y, x])
            any_valid |= valid[y, x]
    if not any_valid:  # everything around is avoided: use it anyway rather than nothing
        for y in range(height):
            for x in range(width):
                valid[y, x] = not hole[y, x]
    masked_blur_into(lab, valid, taps, out)
    ring_px = max(2, int(np.rint(ring)))
    distance = _chessboard_distance(hole, ring_px)
    trend = _fit_trend(out, valid, distance, int(np.rint(gap)), ring_px, hole, near_weight, tukey_de, curved, clamp)
    # Outside the hole the tone is the clean low-pass; avoided pixels next to the hole have
    # no clean value of their own: the trend stands in for them as the boundary.
    for y in range(height):
        for x in range(width):
            if avoid[y, x] and distance[y, x] <= 2 and not valid[y, x]:
                for c in range(3):
                    out[y, x, c] = trend[y, x, c]
    residual = np.empty_like(out)
    for y in range(height):
        for x in range(width):
            for c in range(3):
                residual[y, x, c] = out[y, x, c] - trend[y, x, c] if not hole[y, x] else np.float32(0.0)
    decay = max(decay, 0.5)
    _screened_membrane(residual, hole, 1.0 / (decay * decay))
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                for c in range(3):
                    out[y, x, c] = trend[y, x, c] + residual[y, x, c]


@njit(cache=True, nogil=True)
def _chessboard_distance(hole, limit):
    """Chessboard distance to the hole, capped at ``limit + 1`` (0 inside).

    Two raster passes over the 8 neighbours (a chamfer transform with unit steps is exact for
    the chessboard metric): one pass per ring width cost ~50 passes at 24 megapixels.
    """
    height, width = hole.shape
    far = limit + 1
    distance = np.empty((height, width), np.int64)
    for y in range(height):
        for x in range(width):
            if hole[y, x]:
                distance[y, x] = 0
                continue
            best = far
            if y > 0:
                for dx in range(-1, 2):
                    if 0 <= x + dx < width:
                        best = min(best, distance[y - 1, x + dx] + 1)
            if x > 0:
                best = min(best, distance[y, x - 1] + 1)
            distance[y, x] = best
    for y in range(height - 1, -1, -1):
        for x in range(width - 1, -1, -1):
            best = distance[y, x]
            if best == 0:
                continue
            if y < height - 1:
                for dx in range(-1, 2):
                    if 0 <= x + dx < width:
                        best = min(best, distance[y + 1, x + dx] + 1)
            if x < width - 1:
                best = min(best, distance[y, x + 1] + 1)
            distance[y, x] = min(best, far)
    return distance


@njit(cache=True, nogil=True)
def _fit_trend(low, valid, distance, gap_px, ring_px, hole, near_weight, tukey_de, curved, clamp):
    """A quadratic surface per channel through ``low`` on the ring (see the module doc),
    evaluated everywhere on the window."""
    height, width = hole.shape
    box = mask_box(hole)
    cy = 0.5 * (box[0] + box[1])
    cx = 0.5 * (box[2] + box[3])
    half = 0.5 * max(box[1] - box[0], box[3] - box[2]) + ring_px
    count = 0
    for y in range(height):
        for x in range(width):
            if valid[y, x] and gap_px < distance[y, x] <= ring_px:
                count += 1
    trend = np.empty((height, width, 3), np.float32)
    if count < 6:  # too few clean pixels to fit: the ring's mean
        mean = np.zeros(3, np.float64)
        for y in range(height):
            for x in range(width):
                if valid[y, x]:
                    for c in range(3):
                        mean[c] += low[y, x, c]
                    count += 1
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    trend[y, x, c] = np.float32(mean[c] / max(count, 1))
        return trend
    basis = np.empty((count, 6), np.float64)
    values = np.empty((count, 3), np.float64)
    prior = np.empty(count, np.float64)
    k = 0
    for y in range(height):
        for x in range(width):
            if valid[y, x] and gap_px < distance[y, x] <= ring_px:
                u = (y - cy) / half
                v = (x - cx) / half
                basis[k, 0] = 1.0
                basis[k, 1] = u
                basis[k, 2] = v
                basis[k, 3] = u * u
                basis[k, 4] = u * v
                basis[k, 5] = v * v
                for c in range(3):
                    values[k, c] = low[y, x, c]
                # Farther ring pixels count more: they lie beyond the spot's halo.
                prior[k] = near_weight + (1.0 - near_weight) * (distance[y, x] - gap_px - 1) / max(ring_px - gap_px - 1, 1)
                k += 1
    weights = prior.copy()
    if not curved:
        for i in range(count):
            basis[i, 3] = 0.0
            basis[i, 4] = 0.0
            basis[i, 5] = 0.0
    coefficients = np.zeros((6, 3), np.float64)
    for _ in range(3):
        coefficients = _weighted_lstsq(basis, values, weights)
        for i in range(count):
            error = 0.0
            for c in range(3):
                fitted = 0.0
                for term in range(6):
                    fitted += basis[i, term] * coefficients[term, c]
                error += (values[i, c] - fitted) ** 2
            t = np.sqrt(error) / tukey_de
            weights[i] = prior[i] * ((1.0 - t * t) ** 2 if t < 1.0 else 0.0)
        if weights.sum() < 1e-3 * prior.sum():
            weights[:] = prior
            break
    for y in range(height):
        for x in range(width):
            u = (y - cy) / half
            v = (x - cx) / half
            for c in range(3):
                trend[y, x, c] = np.float32(coefficients[0, c] + coefficients[1, c] * u + coefficients[2, c] * v
                                            + coefficients[3, c] * u * u + coefficients[4, c] * u * v
                                            + coefficients[5, c] * v * v)  # fmt: skip
    if clamp:
        # Inside the hole the surface may not leave the range it takes on the ring: a
        # quadratic through a fading halo would otherwise peak in the middle of the hole.
        low_c = np.full(3, np.inf)
        high_c = np.full(3, -np.inf)
        for y in range(height):
            for x in range(width):
                if valid[y, x] and gap_px < distance[y, x] <= ring_px:
                    for c in range(3):
                        low_c[c] = min(low_c[c], trend[y, x, c])
                        high_c[c] = max(high_c[c], trend[y, x, c])
        for y in range(height):
            for x in range(width):
                if hole[y, x]:
                    for c in range(3):
                        trend[y, x, c] = np.float32(min(max(trend[y, x, c], low_c[c]), high_c[c]))
    return trend


@njit(cache=True, nogil=True)
def _weighted_lstsq(basis, values, weights):
    """Coefficients (6, 3) of ``basis @ c ~ values`` in weighted least squares, lightly
    regularised on the curvature terms so a thin ring cannot make the fit explode."""
    n_terms = basis.shape[1]
    normal = np.zeros((n_terms, n_terms), np.float64)
    rhs = np.zeros((n_terms, 3), np.float64)
    total = 0.0
    for i in range(basis.shape[0]):
        w = weights[i]
        total += w
        for a in range(n_terms):
            for b in range(n_terms):
                normal[a, b] += w * basis[i, a] * basis[i, b]
            for c in range(3):
                rhs[a, c] += w * basis[i, a] * values[i, c]
    for a in range(1, n_terms):
        normal[a, a] += 1e-3 * total * (1.0 if a < 3 else 10.0)
    return _solve_small(normal, rhs)


@njit(cache=True, nogil=True)
def _solve_small(matrix, rhs):
    """``matrix^-1 rhs`` by Gaussian elimination with partial pivoting, for a few unknowns.

    Written out rather than ``np.linalg.solve``: that calls LAPACK through scipy.linalg, whose
    import costs a whole ``process`` start a tenth of a second or more (issue 17).
    """
    n = matrix.shape[0]
    a = matrix.copy()
    b = rhs.copy()
    for col in range(n):
        pivot = col
        for row in range(col + 1, n):
            if abs(a[row, col]) > abs(a[pivot, col]):
                pivot = row
        if a[pivot, col] == 0.0:
            raise ZeroDivisionError("singular matrix")
        if pivot != col:
            for k in range(n):
                a[col, k], a[pivot, k] = a[pivot, k], a[col, k]
            for k in range(b.shape[1]):
                b[col, k], b[pivot, k] = b[pivot, k], b[col, k]
        for row in range(col + 1, n):
            factor = a[row, col] / a[col, col]
            for k in range(col, n):
                a[row, k] -= factor * a[col, k]
            for k in range(b.shape[1]):
                b[row, k] -= factor * b[col, k]
    solution = np.zeros_like(b)
    for row in range(n - 1, -1, -1):
        for k in range(b.shape[1]):
            total = b[row, k]
            for j in range(row + 1, n):
                total -= a[row, j] * solution[j, k]
            solution[row, k] = total / a[row, row]
    return solution


@njit(cache=True, nogil=True)
def _screened_membrane(values, hole, screen):
    """Solve ``laplacian(r) = screen * r`` over ``hole`` in place, with the values outside the
    hole fixed; ``r`` starts at 0 inside."""
    ys, xs = mask_pixels(hole)
    if ys.size == 0:
        return
    box = mask_box(hole)
    extent = max(box[1] - box[0], box[3] - box[2]) + 2
    # The screening shortens the reach of the boundary: fewer sweeps are needed than for a
    # plain membrane over the hole.
    if extent >= MULTIGRID_MIN_EXTENT and screened_membrane_multigrid(values, hole, box, screen, 1e-3) >= 0:
        return
    omega = 2.0 / (1.0 + np.sin(np.pi / extent))
    sor_sweeps(values, ys, xs, values, False, omega, 4 * extent + 50, 1e-3, screen)
