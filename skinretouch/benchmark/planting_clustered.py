"""Second planting style: clustered inflamed acne, red and brown marks, as real acne looks.

Written independently of ``planting.py`` (the dev style) and kept as the TEST style of the
benchmark: nothing is tuned on it. Its models differ from ``planting.py`` on purpose:

- **Shape.** Spots are sums of anisotropic domes (``exp(-q**p)`` of an elliptical distance)
  and blotches cut from smooth random fields, not Fourier-modulated discs. A ``cluster`` is
  5 to 12 papules and pustules placed by a random walk so they touch, under one blotchy
  inflamed halo; its whole footprint is one connected region.
- **Colour.** Absorption in linear RGB (Beer-Lambert): haemoglobin reddens (absorbs green most,
  then blue), melanin browns (absorbs blue most); pus and keratin plugs are mixed in as
  scattering layers. Lab shifts are a consequence, not the parameters.
- **Size.** Lesion radii are drawn log-normally, clusters span 15 to 45 px at face scale
  (several percent of a face), marks 3 to 10 px, moles 2 to 10 px.

Kinds (``keep`` only for moles):

- ``cluster``: merged inflamed papules/pustules with a red halo (swollen: fine texture
  flattened on the domes, a specular glint);
- ``nodule``: one large inflamed lesion (radius 6 to 12 px) with its halo;
- ``red_mark``: flat post-inflammatory redness, texture kept;
- ``brown_mark``: flat post-inflammatory hyperpigmentation, texture kept;
- ``blackhead``: an isolated dark plug, radius 0.8 to 2.2 px, sharp edge;
- ``mole``: sharp-edged, uniform brown, radius 2 to 10 px: a retoucher must keep it.

Ground truth per spot, as in ``planting.py``: ``footprint`` (pixels whose colour changed by more
than ``FOOTPRINT_DE`` against the clean photo), ``core`` (the lesion bodies: domes above half
height, the inner part of marks) and ``kind``. Footprints stay apart by a gap and inside
``BenchPhoto.skin``. Deterministic for a seed. Same call interface as ``planting.plant_spots``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from skinretouch.benchmark.photos import BenchPhoto
from skinretouch.benchmark.planting import PlantedSpot, oracle_mask

__all__ = [
    "BLEMISH_KINDS",
    "FOOTPRINT_DE",
    "LARGE_KINDS",
    "SPOT_KINDS",
    "PlantedSpot",
    "oracle_mask",
    "plant_spots",
]

BLEMISH_KINDS = ("cluster", "nodule", "red_mark", "brown_mark", "blackhead")
LARGE_KINDS = ("cluster", "nodule")  # the regions a removal must treat as large
SPOT_KINDS = BLEMISH_KINDS + ("mole",)

FOOTPRINT_DE = 2.0  # CIE76 dE: visible change
GAP_PX = 4.0  # px at face scale kept free between footprints
ATTEMPTS = 30  # tries per spot; sizes shrink as tries fail

# Relative optical density per channel (R, G, B) of the two chromophores.
HAEMOGLOBIN_OD = np.array([0.07, 0.85, 0.55])
MELANIN_OD = np.array([0.35, 0.6, 1.0])
PUS_RGB = np.array([0.94, 0.88, 0.66])  # sRGB of a pustule head before shading
PLUG_RGB = np.array([0.16, 0.13, 0.10])  # sRGB of an oxidised keratin plug

# Size models, px at face scale: (median, log-sd, min, max) of a radius.
LESION_RADIUS = (4.5, 0.3, 2.5, 8.0)
NODULE_RADIUS = (8.0, 0.2, 6.0, 12.0)
MARK_RADIUS = (5.5, 0.3, 3.0, 10.0)
BLACKHEAD_RADIUS = (1.4, 0.3, 0.8, 2.2)
MOLE_RADIUS = (4.5, 0.45, 2.0, 10.0)
CLUSTER_LESIONS = (5, 12)  # inclusive count range


def plant_spots(
    photo: BenchPhoto,
    *,
    seed: int,
    n_spots: int | None = None,
    kinds=None,
    n_moles: int = 2,
) -> tuple[np.ndarray, list[PlantedSpot]]:
    """Plant clustered acne, marks and blackheads (and moles to keep) on a clean bench photo.

    Parameters
    ----------
    photo : BenchPhoto
    seed : int
        The same seed gives the same image and spots.
    n_spots : int, optional
        Number of blemishes (moles not counted); by default from the skin area, 5 to 12.
        Fewer are planted when the skin cannot hold them.
    kinds : sequence of str, optional
        Blemish kinds to cycle through (default ``BLEMISH_KINDS``, large kinds first).
    n_moles : int
        Moles planted besides the blemishes.

    Returns
    -------
    blemished : (H, W, 3) float32 ndarray
        RGB in [0, 1]; the clean truth is ``photo.rgb``.
    spots : list of PlantedSpot
        Blemishes first, then moles.
    """
    kinds = tuple(BLEMISH_KINDS if kinds is None else kinds)
    if not kinds or any(kind not in BLEMISH_KINDS for kind in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {BLEMISH_KINDS}, got {kinds}")
    if n_moles < 0:
        raise ValueError(f"n_moles must be >= 0, got {n_moles}")
    scale = float(photo.scale)
    if n_spots is None:
        skin_area = float(photo.skin.sum()) / (scale * scale)
        n_spots = int(np.clip(skin_area // 600, 5, 12))
    rng = np.random.default_rng(seed)
    # Largest first so they find room; then moles, then the small kinds.
    wanted = [kinds[i % len(kinds)] for i in range(n_spots)]
    wanted.sort(key=lambda kind: kind not in LARGE_KINDS)
    large = [kind for kind in wanted if kind in LARGE_KINDS]
    small = [kind for kind in wanted if kind not in LARGE_KINDS]
    order = large + ["mole"] * n_moles + list(rng.permutation(small))

    blemished = photo.rgb.astype(np.float32) / np.float32(255.0)
    free = _FreeSkin(photo.skin, scale)
    spots = []
    for kind in order:
        spot = _place(str(kind), rng, scale, photo, free, blemished)
        if spot is not None:
            spots.append(spot)
    spots.sort(key=lambda spot: spot.keep)
    return blemished, spots


class _FreeSkin:
    """Skin not yet taken by a footprint (nor within the gap of one), with a coarse distance
    map to pick centres that leave room for a spot's reach."""

    def __init__(self, skin: np.ndarray, scale: float) -> None:
        self.free = skin.copy()
        self.step = max(1, int(scale))
        self.gap = max(1, int(round(GAP_PX * scale)))
        self._distance = None

    def centres(self, rng, reach: float, count: int) -> np.ndarray:
        if self._distance is None:
            coarse = self.free[:: self.step, :: self.step]
            self._distance = ndi.distance_transform_edt(coarse) * self.step
        ys, xs = np.nonzero(self._distance >= reach)
        if ys.size == 0:
            return np.empty((0, 2), dtype=int)
        pick = rng.integers(ys.size, size=count)
        return np.stack([ys[pick], xs[pick]], axis=1) * self.step

    def take(self, footprint: np.ndarray, window) -> None:
        grown = ndi.binary_dilation(footprint, structure=_disk(self.gap))
        self.free[window] &= ~grown
        self._distance = None


def _place(kind, rng, scale, photo, free, blemished):
    height, width = photo.skin.shape
    shrink = 1.0
    for attempt in range(ATTEMPTS):
        if attempt and attempt % 6 == 0:
            shrink *= 0.8  # the skin may be too small for this size: try a smaller one
        painter = _painter(kind, rng, scale * shrink)
        centres = free.centres(rng, painter.reach, 1)
        if centres.size == 0:
            continue
        cy, cx = (int(v) for v in centres[0])
        half = int(np.ceil(painter.reach)) + 3
        y0, y1 = max(0, cy - half), min(height, cy + half + 1)
        x0, x1 = max(0, cx - half), min(width, cx + half + 1)
        window = (slice(y0, y1), slice(x0, x1))
        before = blemished[window].astype(np.float64)
        centre = (cy - y0 + rng.uniform(-0.5, 0.5), cx - x0 + rng.uniform(-0.5, 0.5))
        painted, core = painter.paint(before, centre)
        painted = painted.astype(np.float32)
        clean_lab = rgb2lab(photo.rgb[window])
        delta = np.linalg.norm(rgb2lab(painted.astype(np.float64)) - clean_lab, axis=-1)
        footprint = delta > FOOTPRINT_DE
        if not footprint.any() or not free.free[window][footprint].all():
            continue
        if kind == "cluster" and ndi.label(footprint)[1] != 1:
            continue  # a cluster is one merged region by definition
        # Crop edge reached: the window was too small to hold the whole footprint.
        if footprint[0].any() or footprint[-1].any() or footprint[:, 0].any() or footprint[:, -1].any():
            continue
        core &= footprint
        if not core.any():
            continue
        # Keep only what really changed: pixels below the threshold are restored exactly.
        restore = ~footprint
        painted[restore] = blemished[window][restore]
        blemished[window] = painted
        free.take(footprint, window)
        full_footprint = np.zeros((height, width), dtype=bool)
        full_footprint[window] = footprint
        full_core = np.zeros((height, width), dtype=bool)
        full_core[window] = core
        return PlantedSpot(kind, (float(centre[0] + y0), float(centre[1] + x0)),
                           full_footprint, full_core, keep=(kind == "mole"))  # fmt: skip
    return None


def _lognormal(rng, model, scale):
    median, log_sd, low, high = model
    return float(np.clip(median * np.exp(rng.normal(0.0, log_sd)), low, high)) * scale


class _Painter:
    """Draws one spot on an sRGB crop: ``paint`` returns (new sRGB crop, core mask)."""

    reach: float

    def paint(self, rgb, centre):
        raise NotImplementedError


def _painter(kind, rng, scale) -> _Painter:
    if kind == "cluster":
        return _Inflamed(rng, scale, n_lesions=int(rng.integers(CLUSTER_LESIONS[0], CLUSTER_LESIONS[1] + 1)))
    if kind == "nodule":
        return _Inflamed(rng, scale, n_lesions=1)
    if kind in ("red_mark", "brown_mark"):
        return _Mark(rng, scale, brown=(kind == "brown_mark"))
    if kind == "blackhead":
        return _Blackhead(rng, scale)
    if kind == "mole":
        return _Mole(rng, scale)
    raise ValueError(f"unknown spot kind {kind!r}")


class _Inflamed(_Painter):
    """Papules and pustules (one, or several merged by a random walk) under a blotchy halo."""

    def __init__(self, rng, scale, *, n_lesions):
        self.rng = rng
        self.scale = scale
        model = NODULE_RADIUS if n_lesions == 1 else LESION_RADIUS
        self.radii = [_lognormal(rng, model, scale) for _ in range(n_lesions)]
        offsets = [np.zeros(2)]
        for radius in self.radii[1:]:
            # Step from a random earlier lesion by about the sum of radii: neighbours touch.
            base = offsets[int(rng.integers(len(offsets)))]
            angle = rng.uniform(0.0, 2.0 * np.pi)
            step = rng.uniform(0.9, 1.5) * (radius + np.mean(self.radii))
            offsets.append(base + step * np.array([np.sin(angle), np.cos(angle)]))
        self.offsets = np.array(offsets) - np.mean(offsets, axis=0)
        self.halo_sigma = rng.uniform(1.5, 2.5) * float(np.mean(self.radii))
        spread = float(np.max(np.hypot(*self.offsets.T) + np.array(self.radii)))
        self.reach = spread + 3.0 * self.halo_sigma

    def paint(self, rgb, centre):
        rng = self.rng
        shape = rgb.shape[:2]
        yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        domes = np.zeros(shape)
        heads = np.zeros(shape)
        glint = np.zeros(shape)
        light = rng.uniform(0.0, 2.0 * np.pi)
        for (oy, ox), radius in zip(self.offsets, self.radii):
            cy, cx = centre[0] + oy, centre[1] + ox
            q = _elliptic(yy - cy, xx - cx, radius, rng.uniform(0.7, 1.0), rng.uniform(0, np.pi))
            dome = np.exp(-(q ** rng.uniform(1.6, 2.6)))
            domes = np.maximum(domes, dome)
            if rng.random() < 0.45:  # a pustule: a pale head on the dome top
                heads = np.maximum(heads, rng.uniform(0.55, 0.85) * np.exp(-((q / 0.4) ** 2)))
            gy = cy - 0.35 * radius * np.sin(light)
            gx = cx - 0.35 * radius * np.cos(light)
            glint_sigma = max(0.5, 0.18 * radius)
            glint = np.maximum(glint, np.exp(-((yy - gy) ** 2 + (xx - gx) ** 2) / (2 * glint_sigma**2)))
        blotch = _smooth_noise(rng, shape, 0.8 * self.halo_sigma, 0.55, 1.15)
        halo = ndi.gaussian_filter((domes > 0.3).astype(np.float64), self.halo_sigma, mode="constant")
        halo = np.clip(halo / max(0.6 * halo.max(), 1e-6), 0.0, 1.0) * blotch  # a plateau, then a fade

        linear = _to_linear(rgb)
        local_mean = ndi.gaussian_filter(linear, (self.scale, self.scale, 0))
        flatten = rng.uniform(0.35, 0.6) * domes[..., None]  # swelling stretches the texture flat
        linear = local_mean + (1.0 - flatten) * (linear - local_mean)
        haemoglobin = rng.uniform(0.55, 0.95) * domes + rng.uniform(0.45, 0.75) * halo
        melanin = rng.uniform(0.0, 0.12) * domes
        linear = _absorb(linear, haemoglobin, melanin)
        pus = _to_linear(PUS_RGB * rng.uniform(0.92, 1.0))
        linear = linear * (1.0 - heads[..., None]) + pus * heads[..., None]
        linear += rng.uniform(0.06, 0.14) * (glint * domes)[..., None]
        core = domes > 0.5
        return _to_srgb(linear), core


class _Mark(_Painter):
    """A flat blotch of post-inflammatory redness or brown pigment; texture passes through."""

    def __init__(self, rng, scale, *, brown):
        self.rng = rng
        self.brown = brown
        self.radius = _lognormal(rng, MARK_RADIUS, scale)
        self.reach = 1.6 * self.radius + 2.0 * scale

    def paint(self, rgb, centre):
        rng = self.rng
        shape = rgb.shape[:2]
        yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        q = _elliptic(yy - centre[0], xx - centre[1], self.radius, rng.uniform(0.55, 1.0),
                      rng.uniform(0, np.pi))  # fmt: skip
        # A blotch: the elliptical profile perturbed by a smooth field, then a soft cut.
        field = 1.0 - q + 0.35 * _smooth_noise(rng, shape, 0.45 * self.radius, -1.0, 1.0)
        density = np.clip(field / 0.45, 0.0, 1.0) ** 1.5
        density *= q <= 1.5  # never beyond the reach
        linear = _to_linear(rgb)
        if self.brown:
            linear = _absorb(linear, 0.04 * density, rng.uniform(0.4, 0.75) * density)
        else:
            linear = _absorb(linear, rng.uniform(0.2, 0.4) * density, 0.02 * density)
        return _to_srgb(linear), density > 0.6


class _Blackhead(_Painter):
    """An open comedo: a dark keratin plug with a sharp rim in a slightly widened pore."""

    def __init__(self, rng, scale):
        self.rng = rng
        self.radius = _lognormal(rng, BLACKHEAD_RADIUS, scale)
        self.reach = 2.5 * self.radius + 1.5

    def paint(self, rgb, centre):
        rng = self.rng
        shape = rgb.shape[:2]
        yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        q = _elliptic(yy - centre[0], xx - centre[1], self.radius, rng.uniform(0.7, 1.0),
                      rng.uniform(0, np.pi))  # fmt: skip
        edge = max(0.35, 0.25 * self.radius) / self.radius
        plug = np.clip((1.0 - q) / edge + 0.5, 0.0, 1.0) * rng.uniform(0.85, 0.97)
        pore = np.exp(-(((q - 1.0) / 0.5) ** 2)) * (q > 1.0) * 0.25  # shadowed pore wall
        linear = _to_linear(rgb) * (1.0 - pore[..., None])
        target = _to_linear(PLUG_RGB * rng.uniform(0.8, 1.3))
        linear = linear * (1.0 - plug[..., None]) + target * plug[..., None]
        return _to_srgb(linear), q <= 1.0


class _Mole(_Painter):
    """A benign naevus: uniform brown, sharp edge, regular oval; must be kept by a retoucher."""

    def __init__(self, rng, scale):
        self.rng = rng
        self.radius = _lognormal(rng, MOLE_RADIUS, scale)
        self.scale = scale
        self.reach = self.radius + 2.0 * scale + 1.0

    def paint(self, rgb, centre):
        rng = self.rng
        shape = rgb.shape[:2]
        yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        q = _elliptic(yy - centre[0], xx - centre[1], self.radius, rng.uniform(0.8, 1.0),
                      rng.uniform(0, np.pi))  # fmt: skip
        edge_px = 0.6 * self.scale
        cover = np.clip((1.0 - q) * self.radius / edge_px + 0.5, 0.0, 1.0)
        linear = _to_linear(rgb)
        inside = cover > 0.5
        skin_tone = linear[~inside].mean(axis=0) if (~inside).any() else linear.mean(axis=(0, 1))
        # Uniform: one brown for the whole mole, from the surrounding skin's tone under melanin.
        brown = skin_tone * np.exp(-rng.uniform(1.4, 2.2) * MELANIN_OD)
        texture = linear / np.maximum(ndi.gaussian_filter(linear, (self.scale, self.scale, 0)), 1e-4)
        painted = brown * np.clip(texture, 0.8, 1.2) ** 0.5  # a little skin grain shows through
        out = linear * (1.0 - cover[..., None]) + painted * cover[..., None]
        return _to_srgb(out), q <= 0.8


def _elliptic(dy, dx, radius, aspect, angle):
    """Elliptical distance in units of ``radius`` (major axis ``radius``, minor ``aspect*radius``)."""
    c, s = np.cos(angle), np.sin(angle)
    u = (dx * c + dy * s) / radius
    v = (-dx * s + dy * c) / (radius * aspect)
    return np.hypot(u, v)


def _smooth_noise(rng, shape, sigma, low, high):
    """A smooth random field rescaled to [low, high]."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), max(sigma, 0.5), mode="reflect")
    span = field.max() - field.min()
    unit = (field - field.min()) / span if span > 0 else np.full(shape, 0.5)
    return low + (high - low) * unit


def _absorb(linear, haemoglobin, melanin):
    density = haemoglobin[..., None] * HAEMOGLOBIN_OD + melanin[..., None] * MELANIN_OD
    return linear * np.exp(-density)


def _to_linear(srgb):
    srgb = np.clip(np.asarray(srgb, dtype=np.float64), 0.0, 1.0)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(linear):
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1.0 / 2.4) - 0.055)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx * xx + yy * yy <= radius * radius
