"""Planting style ``marks`` (dev only): flat post-acne marks and moles of every size.

Post-inflammatory marks, modelled on the red and brown marks of the dev real-acne photos: flat
(no swelling, no highlight: the skin's own texture runs through them), a soft edge that fades
over most of the radius, an irregular outline, faint to moderate, and sometimes two or three
close together. Colour changes are relative to the local skin, so they read on every tone:

- ``red_mark``: a* +3..+10, lightness x(0.92..0.99), b* about unchanged (at the centre; a blotchy
  field takes up to 30 % off here and there);
- ``brown_mark``: lightness x(0.81..0.95) (L* -3..-12 on light skin, less on dark), b* x(1.0..1.2)
  (a small rise, smaller still on dark skin, whose b* is lower), a* +0..2;
- ``mole``: ``keep=True``, sharp edge, uniform, lightness x(0.45..0.7) of the skin around it (a*
  +0..4, b* -2..+4),
  radius 1.5-3, 3-6 or 6-9 px at face scale (one of the three drawn evenly), so small moles show.

Marks are 3-12 px in radius at face scale. Interface, ground truth (footprint, core) and spacing
as in :mod:`.planting`, whose ``PlantedSpot``, ``oracle_mask`` and site picking are reused.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.color import lab2rgb, rgb2lab

from skinretouch.benchmark.photos import BenchPhoto
from skinretouch.benchmark.planting import (
    DEFAULT_CORE_RADIUS,
    FOOTPRINT_DE,
    MAX_TRIES_PER_SPOT,
    SPOT_GAP_PX,
    PlantedSpot,
    _Sites,
    _smoothstep,
    default_spot_count,
    oracle_mask,
)

__all__ = ["BLEMISH_KINDS", "SPOT_KINDS", "PlantedSpot", "oracle_mask", "plant_spots"]

BLEMISH_KINDS = ("red_mark", "brown_mark")
SPOT_KINDS = BLEMISH_KINDS + ("mole",)

MARK_RADIUS_PX = (3.0, 12.0)
MOLE_RADIUS_PX = ((1.5, 3.0), (3.0, 6.0), (6.0, 9.0))
# Edge ramp (start, end) in outline radii: marks fade out over most of their radius, moles do not.
EDGE_RAMP = {"red_mark": (0.3, 1.4), "brown_mark": (0.3, 1.4), "mole": (0.9, 1.05)}
CLUSTER_CHANCE = 0.35  # a mark brings one or two more marks of its kind close by
OUTLINE_AMPLITUDE = {"red_mark": 0.25, "brown_mark": 0.25, "mole": 0.08}


def plant_spots(
    photo: BenchPhoto,
    *,
    seed: int,
    n_spots: int | None = None,
    kinds=None,
    n_moles: int = 2,
) -> tuple[np.ndarray, list[PlantedSpot]]:
    """Plant marks (and moles) on a clean bench photo; same contract as :func:`.planting.plant_spots`."""
    kinds = tuple(BLEMISH_KINDS if kinds is None else kinds)
    if not kinds or any(kind not in BLEMISH_KINDS for kind in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {BLEMISH_KINDS}, got {kinds}")
    scale = float(photo.scale)
    n_spots = default_spot_count(photo) if n_spots is None else n_spots
    rng = np.random.default_rng(seed)
    blemished = photo.rgb.astype(np.float32) / np.float32(255.0)
    sites = _Sites(photo.skin, scale)
    spots: list[PlantedSpot] = []
    for _ in range(n_moles):
        low, high = MOLE_RADIUS_PX[rng.integers(len(MOLE_RADIUS_PX))]
        spot = _plant_one("mole", rng.uniform(low, high) * scale, rng, scale, photo, sites, blemished)
        spots += [spot] if spot is not None else []
    marks: list[PlantedSpot] = []
    for _ in range(3 * n_spots):  # a draw that does not fit is dropped; small skin holds fewer
        if len(marks) >= n_spots:
            break
        kind = kinds[rng.integers(len(kinds))]
        radius = rng.uniform(*MARK_RADIUS_PX) * scale
        spot = _plant_one(kind, radius, rng, scale, photo, sites, blemished)
        if spot is None:
            continue
        marks.append(spot)
        if rng.uniform() < CLUSTER_CHANCE:
            for _ in range(rng.integers(1, 3)):
                if len(marks) >= n_spots:
                    break
                radius = rng.uniform(MARK_RADIUS_PX[0], 0.6 * MARK_RADIUS_PX[1]) * scale
                near = sites.taken[-1]  # next to the last mark planted
                spot = _plant_one(kind, radius, rng, scale, photo, sites, blemished, near=near)
                marks += [spot] if spot is not None else []
    return blemished, marks + spots


def _plant_one(kind, radius, rng, scale, photo, sites, blemished, near=None):
    skin, (height, width) = photo.skin, photo.skin.shape
    gap = SPOT_GAP_PX * scale
    reach = radius * EDGE_RAMP[kind][1] + 1.0
    for _ in range(MAX_TRIES_PER_SPOT):
        if near is None:
            site = sites.pick(rng, reach, gap)
        else:  # just beyond the neighbour's outline and the gap, in a random direction
            angle = rng.uniform(0.0, 2.0 * np.pi)
            distance = near[2] + reach + gap + rng.uniform(0.0, 2.0) * scale
            site = (int(round(near[0] + distance * np.sin(angle))), int(round(near[1] + distance * np.cos(angle))))
            if not (0 <= site[0] < height and 0 <= site[1] < width and skin[site]):
                continue
        if site is None:
            return None
        cy, cx = site
        center = (cy + rng.uniform(-0.5, 0.5), cx + rng.uniform(-0.5, 0.5))
        half = int(np.ceil(reach * 1.3 + 3.0 * scale)) + 2
        y0, y1, x0, x1 = max(0, cy - half), min(height, cy + half + 1), max(0, cx - half), min(width, cx + half + 1)
        window = (slice(y0, y1), slice(x0, x1))
        before = blemished[window].astype(np.float64)
        new_lab, weight, core = _render(kind, rng, rgb2lab(before), skin[window], (center[0] - y0, center[1] - x0),
                                        radius, scale)  # fmt: skip
        touched = weight > 1e-3
        patch = before.copy()
        patch[touched] = np.clip(lab2rgb(new_lab), 0.0, 1.0)[touched]
        patch = patch.astype(np.float32).astype(np.float64)  # judged as it will be stored
        delta = np.linalg.norm(rgb2lab(patch) - rgb2lab(photo.rgb[window]), axis=-1)
        footprint = delta > FOOTPRINT_DE
        if not footprint.any() or not skin[window][footprint].all():
            continue
        ys, xs = np.nonzero(footprint)
        outer = max(np.hypot(ys + y0 - center[0], xs + x0 - center[1]).max(), 1.0)
        if any(np.hypot(y - center[0], x - center[1]) < outer + r + gap for y, x, r in sites.taken):
            continue
        core &= footprint
        if not core.any():
            ly, lx = int(round(center[0] - y0)), int(round(center[1] - x0))
            if not footprint[ly, lx]:
                continue
            core[ly, lx] = True
        blemished[window] = patch
        sites.taken.append((center[0], center[1], outer))
        full_footprint, full_core = np.zeros_like(skin), np.zeros_like(skin)
        full_footprint[window], full_core[window] = footprint, core
        return PlantedSpot(kind, (float(center[0]), float(center[1])), full_footprint, full_core,
                           keep=(kind == "mole"))  # fmt: skip
    return None


def _render(kind, rng, lab, skin, center, radius, scale):
    """(new Lab, weight, core) of one spot on a Lab crop: a weight field times a change relative to the skin."""
    yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]].astype(np.float64)
    dy, dx = yy - center[0], xx - center[1]
    theta = np.arctan2(dy, dx)
    orders = np.arange(2, 6)
    amplitudes = rng.uniform(0.0, OUTLINE_AMPLITUDE[kind], size=orders.size)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=orders.size)
    modulation = 1.0 + np.sum(amplitudes[:, None, None] * np.cos(orders[:, None, None] * theta + phases[:, None, None]), axis=0)
    d = np.hypot(dy, dx) / (radius * np.maximum(modulation, 0.4))
    weight = 1.0 - _smoothstep(*EDGE_RAMP[kind], d)
    core = d <= DEFAULT_CORE_RADIUS
    out = lab.copy()
    if kind == "mole":
        around = (weight < 1e-3) & skin  # the skin around the mole (not hair or background)
        local = np.median(lab[around if around.any() else weight < 1e-3], axis=0)
        target = local * [rng.uniform(0.45, 0.7), 1.0, 1.0] + [0.0, rng.uniform(0.0, 4.0), rng.uniform(-2.0, 4.0)]
        painted = target + np.zeros_like(lab)
        painted[..., 0] += 0.3 * (lab[..., 0] - ndi.gaussian_filter(lab[..., 0], scale))  # a little texture
        return lab * (1.0 - weight[..., None]) + painted * weight[..., None], weight, core
    # Marks are blotchy: a smooth random field (0.7..1) modulates their strength.
    blotch = ndi.gaussian_filter(rng.standard_normal(lab.shape[:2]), max(1.0, 0.35 * radius))
    blotch = 0.85 + 0.15 * blotch / max(np.abs(blotch).max(), 1e-9)
    weight = weight * blotch
    if kind == "red_mark":
        out[..., 0] *= 1.0 - rng.uniform(0.01, 0.08) * weight
        out[..., 1] += rng.uniform(3.0, 10.0) * weight
        out[..., 2] += rng.uniform(-1.0, 1.5) * weight
    elif kind == "brown_mark":
        out[..., 0] *= 1.0 - rng.uniform(0.05, 0.19) * weight
        out[..., 1] += rng.uniform(0.0, 2.0) * weight
        out[..., 2] *= 1.0 + rng.uniform(0.0, 0.2) * weight
    else:
        raise ValueError(f"unknown spot kind {kind!r}")
    return out, weight, core
