"""Synthetic blemishes planted on real skin, with their ground truth.

Every spot is rendered in CIE Lab on the clean photo, with an irregular outline (the radius is
modulated by random Fourier terms of order 2 to 4) and a soft edge (a sharp one for moles).
Sizes are given in pixels at face scale and multiplied by ``BenchPhoto.scale``. The kinds and
their looks follow BENCHMARK.md:

- ``papule``: red (a* +12..24), darker (L* -6..-14), swollen: the local fine texture is partly
  smoothed, with a small highlight up and to the left;
- ``pustule``: a papule with a pale yellow-white centre;
- ``dark_spot``: flat brown (L* -8..-16, b* +5..+9), added on top so the texture is kept;
- ``blackhead``: 1-2 px radius, very dark;
- ``mole``: dark brown, sharp edge, 4-8 px radius, ``keep=True``: a retoucher must leave it.

Ground truth per spot: ``footprint`` (pixels whose colour changed by more than 2 dE), ``core``
(the inner part of the outline, used to judge detection). Spots never overlap: footprints stay
``SPOT_GAP_PX`` (times the scale) apart, and every footprint lies inside ``BenchPhoto.skin``.
Planting is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.color import lab2rgb, rgb2lab

from skinretouch.benchmark.photos import BenchPhoto
from skinretouch.kernels.labels import disk

__all__ = [
    "BLEMISH_KINDS",
    "FOOTPRINT_DE",
    "SPOT_KINDS",
    "PlantedSpot",
    "oracle_mask",
    "plant_spots",
]

BLEMISH_KINDS = ("papule", "pustule", "dark_spot", "blackhead")
SPOT_KINDS = BLEMISH_KINDS + ("mole",)

FOOTPRINT_DE = 2.0  # CIE76 dE: visible change
SPOT_GAP_PX = 3.0  # px at face scale between footprints
MAX_TRIES_PER_SPOT = 40

# Nominal outline radius range per kind, px at face scale.
RADIUS_PX = {
    "papule": (3.0, 6.0),
    "pustule": (3.5, 6.0),
    "dark_spot": (3.0, 7.0),
    "blackhead": (1.0, 2.0),
    "mole": (4.0, 8.0),
}
# Edge ramp (start, end) in units of the outline radius: weight 1 inside start, 0 beyond end.
EDGE_RAMP = {
    "papule": (0.3, 1.5),  # inflamed skin fades out in a wide halo
    "pustule": (0.3, 1.5),
    "dark_spot": (0.5, 1.3),
    "blackhead": (0.5, 1.4),
    "mole": (0.9, 1.05),
}
CORE_RADIUS = {"blackhead": 1.0}  # outline units; others use DEFAULT_CORE_RADIUS
DEFAULT_CORE_RADIUS = 0.6


@dataclass
class PlantedSpot:
    """One planted spot and its ground truth.

    Attributes
    ----------
    kind : str
        One of ``SPOT_KINDS``.
    center : tuple of float
        (y, x) in pixels.
    footprint : (H, W) bool ndarray
        Pixels whose colour differs from the clean photo by more than ``FOOTPRINT_DE``.
    core : (H, W) bool ndarray
        Inner part of the spot; a detector has found it when it covers half of this.
    keep : bool
        True for moles, which a retoucher must leave untouched.
    """

    kind: str
    center: tuple[float, float]
    footprint: np.ndarray
    core: np.ndarray
    keep: bool


def plant_spots(
    photo: BenchPhoto,
    *,
    seed: int,
    n_spots: int | None = None,
    kinds=None,
    n_moles: int = 1,
) -> tuple[np.ndarray, list[PlantedSpot]]:
    """Plant blemishes (and moles) on a clean bench photo.

    Parameters
    ----------
    photo : BenchPhoto
    seed : int
        The same seed gives the same image and spots.
    n_spots : int, optional
        Number of blemishes (moles not counted). By default it grows with the skin area, 6 to 16.
        Fewer are planted when the skin cannot hold them.
    kinds : sequence of str, optional
        Blemish kinds to use in turn (default ``BLEMISH_KINDS``).
    n_moles : int
        Number of moles planted besides the blemishes.

    Returns
    -------
    blemished : (H, W, 3) float32 ndarray
        RGB in [0, 1]; the clean truth is ``photo.rgb``.
    spots : list of PlantedSpot
        Blemishes first, then moles.
    """
    kinds = tuple(BLEMISH_KINDS if kinds is None else kinds)
    unknown = [kind for kind in kinds if kind not in BLEMISH_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {BLEMISH_KINDS}, got {kinds}")
    scale = float(photo.scale)
    if n_spots is None:
        n_spots = default_spot_count(photo)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(kinds))
    # Moles first: they are the largest, and a bench photo without its mole tests nothing.
    wanted = ["mole"] * n_moles + [kinds[order[i % len(kinds)]] for i in range(n_spots)]

    # Float32 for the whole photo (24-megapixel speed photos); Lab only on crops, in float64.
    blemished = photo.rgb.astype(np.float32) / np.float32(255.0)
    site = _Sites(photo.skin, scale)
    spots: list[PlantedSpot] = []
    for kind in wanted:
        spot = _plant_one(kind, rng, scale, photo.skin, site, photo.rgb, blemished)
        if spot is not None:
            spots.append(spot)
    spots.sort(key=lambda spot: spot.keep)
    return blemished, spots


def default_spot_count(photo: BenchPhoto) -> int:
    """Blemishes asked for by default: one per 20x20 px of skin at face scale, 6 to 16.

    Small skin regions hold fewer; ``plant_spots`` plants what fits.
    """
    area = float(photo.skin.sum()) / (photo.scale * photo.scale)
    return int(np.clip(area // 400, 6, 16))


def oracle_mask(spots, shape, *, dilation_px: int) -> np.ndarray:
    """Union of the footprints of the spots to remove (not moles), dilated by a disk.

    Parameters
    ----------
    spots : sequence of PlantedSpot
    shape : tuple
        (H, W) or (H, W, C) of the photo.
    dilation_px : int
        Disk radius in pixels; 0 gives the bare footprints.

    Returns
    -------
    (H, W) bool ndarray
    """
    mask = np.zeros(tuple(shape[:2]), dtype=bool)
    for spot in spots:
        if not spot.keep:
            mask |= spot.footprint
    if dilation_px > 0 and mask.any():
        mask = ndi.binary_dilation(mask, structure=disk(dilation_px))
    return mask


class _Sites:
    """Where a spot's centre may go: skin pixels (on a grid of about one face-scale pixel) with
    their distance to the skin's edge, and the discs already taken by planted spots."""

    def __init__(self, skin: np.ndarray, scale: float) -> None:
        step = max(1, int(scale))
        distance = ndi.distance_transform_edt(skin[::step, ::step]) * step
        ys, xs = np.nonzero(distance > 0)
        self.ys, self.xs = ys * step, xs * step
        self.distance = distance[ys, xs]
        self.taken: list[tuple[float, float, float]] = []  # (y, x, radius) of planted spots

    def pick(self, rng, reach: float, gap: float) -> tuple[int, int] | None:
        candidates = np.flatnonzero(self.distance >= reach)
        if candidates.size == 0:
            return None
        taken = np.array(self.taken, dtype=np.float64).reshape(-1, 3)
        # Draw-and-test is fast while skin is mostly free; filtering all sites is the fallback.
        for index in candidates[rng.integers(candidates.size, size=64)]:
            if self._clear(index, taken, reach, gap).all():
                return int(self.ys[index]), int(self.xs[index])
        for y, x, radius in taken:
            far = np.hypot(self.ys[candidates] - y, self.xs[candidates] - x) >= reach + radius + gap
            candidates = candidates[far]
            if candidates.size == 0:
                return None
        index = candidates[rng.integers(candidates.size)]
        return int(self.ys[index]), int(self.xs[index])

    def _clear(self, index, taken, reach, gap) -> np.ndarray:
        distance = np.hypot(taken[:, 0] - self.ys[index], taken[:, 1] - self.xs[index])
        return distance >= reach + taken[:, 2] + gap


def _plant_one(kind, rng, scale, skin, sites, clean_rgb, blemished):
    height, width = skin.shape
    low, high = RADIUS_PX[kind]
    gap = SPOT_GAP_PX * scale
    for _ in range(MAX_TRIES_PER_SPOT):
        radius = rng.uniform(low, high) * scale
        reach = radius * EDGE_RAMP[kind][1] + 1.0
        site = sites.pick(rng, reach, gap)
        if site is None:
            continue
        cy, cx = site
        center = (cy + rng.uniform(-0.5, 0.5), cx + rng.uniform(-0.5, 0.5))
        half = int(np.ceil(reach * 1.3 + 3.0 * scale)) + 2
        y0, y1 = max(0, cy - half), min(height, cy + half + 1)
        x0, x1 = max(0, cx - half), min(width, cx + half + 1)
        window = (slice(y0, y1), slice(x0, x1))
        local_center = (center[0] - y0, center[1] - x0)
        before = blemished[window].astype(np.float64)
        lab = rgb2lab(before)
        shape_params = _outline(rng)
        new_lab, weight, core = _render(kind, rng, lab, local_center, radius, scale, shape_params)
        touched = weight > 1e-3
        rendered = np.clip(lab2rgb(new_lab), 0.0, 1.0)
        patch = before.copy()
        patch[touched] = rendered[touched]
        patch = patch.astype(np.float32).astype(np.float64)  # judged as it will be stored
        delta = np.linalg.norm(rgb2lab(patch) - rgb2lab(clean_rgb[window]), axis=-1)
        local_footprint = delta > FOOTPRINT_DE
        if not local_footprint.any() or not skin[window][local_footprint].all():
            continue
        # The disc test in _Sites is only a first cut: check the real outlines stay apart.
        ys, xs = np.nonzero(local_footprint)
        outer = max(np.hypot(ys + y0 - center[0], xs + x0 - center[1]).max(), 1.0)
        if any(np.hypot(y - center[0], x - center[1]) < outer + r + gap for y, x, r in sites.taken):
            continue
        core = core & local_footprint
        if not core.any():
            ly, lx = int(round(local_center[0])), int(round(local_center[1]))
            if not local_footprint[ly, lx]:
                continue
            core[ly, lx] = True
        footprint = np.zeros_like(skin)
        footprint[window] = local_footprint
        core_full = np.zeros_like(skin)
        core_full[window] = core
        blemished[window] = patch
        sites.taken.append((center[0], center[1], outer))
        return PlantedSpot(kind, (float(center[0]), float(center[1])), footprint, core_full,
                           keep=(kind == "mole"))  # fmt: skip
    return None


def _outline(rng):
    orders = np.arange(2, 5)
    amplitudes = rng.uniform(0.0, 0.13, size=orders.size)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=orders.size)
    return orders, amplitudes, phases


def _render(kind, rng, lab, center, radius, scale, shape_params):
    """Return (new Lab, weight in [0, 1], core) for one spot drawn on a Lab crop."""
    orders, amplitudes, phases = shape_params
    yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]].astype(np.float64)
    dy, dx = yy - center[0], xx - center[1]
    rho = np.hypot(dy, dx)
    theta = np.arctan2(dy, dx)
    modulation = 1.0 + np.sum(
        amplitudes[:, None, None] * np.cos(orders[:, None, None] * theta + phases[:, None, None]),
        axis=0,
    )
    d = rho / (radius * modulation)
    start, end = EDGE_RAMP[kind]
    weight = 1.0 - _smoothstep(start, end, d)
    core = d <= CORE_RADIUS.get(kind, DEFAULT_CORE_RADIUS)

    lightness = lab[..., 0]
    detail = lightness - ndi.gaussian_filter(lightness, scale)
    out = lab.copy()
    if kind in ("papule", "pustule"):
        swelling = rng.uniform(0.4, 0.65)
        out[..., 0] -= swelling * weight * detail
        out[..., 0] -= rng.uniform(6.0, 14.0) * weight
        out[..., 1] += rng.uniform(12.0, 24.0) * weight
        out[..., 2] += rng.uniform(0.0, 4.0) * weight
        angle = rng.uniform(1.0, 1.5) * np.pi  # between left and up (image y grows downwards)
        hy = center[0] + 0.35 * radius * np.sin(angle)
        hx = center[1] + 0.35 * radius * np.cos(angle)
        sigma = max(0.6, 0.22 * radius)
        highlight = np.exp(-((yy - hy) ** 2 + (xx - hx) ** 2) / (2.0 * sigma * sigma))
        out[..., 0] += rng.uniform(4.0, 9.0) * highlight * weight
        if kind == "pustule":
            head = (1.0 - _smoothstep(0.15, 0.5, d)) * rng.uniform(0.75, 0.9)
            target = np.array([rng.uniform(80.0, 88.0), rng.uniform(2.0, 6.0), rng.uniform(14.0, 24.0)])
            out = out * (1.0 - head[..., None]) + target * head[..., None]
            out[..., 0] += 0.3 * head * detail
    elif kind == "dark_spot":
        out[..., 0] -= rng.uniform(8.0, 16.0) * weight
        out[..., 1] += rng.uniform(1.0, 4.0) * weight
        out[..., 2] += rng.uniform(5.0, 9.0) * weight
    elif kind == "blackhead":
        target = np.array([rng.uniform(14.0, 26.0), rng.uniform(2.0, 6.0), rng.uniform(6.0, 12.0)])
        strength = 0.95 * weight
        out = out * (1.0 - strength[..., None]) + target * strength[..., None]
    elif kind == "mole":
        target = np.array([rng.uniform(26.0, 38.0), rng.uniform(11.0, 17.0), rng.uniform(17.0, 26.0)])
        painted = np.broadcast_to(target, out.shape).copy()
        painted[..., 0] += 0.4 * detail
        out = out * (1.0 - weight[..., None]) + painted * weight[..., None]
    else:
        raise ValueError(f"unknown spot kind {kind!r}")
    return out, weight, core


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
