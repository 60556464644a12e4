"""Planted spots on the bench's real portraits, cut into per-spot crops, for kernel tests.

Each case is one blemish on a crop as the pipeline would hand it to a removal kernel: the
blemished crop (8-bit, as a real photo), the hole (the spot's footprint dilated like the
bench's oracle masks), the other spots as ``avoid``, and the clean crop as ground truth.
Figures use the bench's own per-spot metric (``spot_removal_metrics``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace

import cv2
import numpy as np
from scipy import ndimage as ndi

from skinretouch.benchmark.metrics import spot_removal_metrics
from skinretouch.benchmark.photos import load_bench_photos
from skinretouch.benchmark.planting import plant_spots
from skinretouch.kernels.removal import crop_margin

PORTRAITS = ("astronaut", "grace_hopper")


@dataclass(frozen=True)
class SpotCase:
    photo: str
    kind: str
    scale: float
    image: np.ndarray  # (h, w, 3) float32 blemished crop, 8-bit levels
    clean: np.ndarray  # (h, w, 3) float32 clean crop
    hole: np.ndarray  # (h, w) bool
    avoid: np.ndarray  # (h, w) bool: the other spots
    footprint: np.ndarray  # (h, w) bool: where the spot changed the colour by > 2 dE


@functools.lru_cache(maxsize=4)
def spot_cases(dilation_px: float = 1.0, seeds: tuple[int, ...] = (0, 1)) -> tuple[SpotCase, ...]:
    """Blemishes (moles left out) planted on the two portraits, one crop per spot."""
    return tuple(_cases_on(load_bench_photos(names=PORTRAITS), plant_spots, dilation_px, seeds))


@functools.lru_cache(maxsize=2)
def set_spot_cases(names: tuple[str, ...], style: str = "classic", seeds: tuple[int, ...] = (0, 1)) -> tuple[SpotCase, ...]:
    """Blemishes of a planting style on photos of the bench's set (``bench/photos.toml``), one
    crop per spot, masks as the bench's oracle (footprint + 1 px at face scale); empty when a
    photo cannot be fetched."""
    from skinretouch.benchmark.photoset import load_set_photos
    from skinretouch.benchmark.styles import planting_style

    photos = [p.photo for p in load_set_photos(list(names))]
    if len(photos) < len(names):
        return ()
    return tuple(_cases_on(photos, planting_style(style).plant_spots, 1.0, seeds))


def _cases_on(photos, plant, dilation_px, seeds) -> list[SpotCase]:
    cases = []
    for photo in photos:
        clean = photo.rgb.astype(np.float32) / 255.0
        for seed in seeds:
            blemished, spots = plant(photo, seed=seed)
            blemished = np.rint(np.clip(blemished, 0, 1) * 255.0).astype(np.float32) / 255.0
            radius = max(1, round(dilation_px * photo.scale))
            disk = _disk(radius)
            holes = [ndi.binary_dilation(spot.footprint, structure=disk) for spot in spots]
            all_holes = np.any(holes, axis=0)
            for spot, hole in zip(spots, holes):
                if spot.keep:
                    continue
                ys, xs = np.nonzero(hole)
                margin = crop_margin(photo.scale, max(np.ptp(ys), np.ptp(xs)) + 1)
                window = (
                    slice(max(0, ys.min() - margin), ys.max() + margin + 1),
                    slice(max(0, xs.min() - margin), xs.max() + margin + 1),
                )
                cases.append(SpotCase(
                    photo=photo.name,
                    kind=spot.kind,
                    scale=photo.scale,
                    image=np.ascontiguousarray(blemished[window]),
                    clean=np.ascontiguousarray(clean[window]),
                    hole=hole[window].copy(),
                    avoid=(all_holes & ~hole)[window].copy(),
                    footprint=spot.footprint[window].copy(),
                ))  # fmt: skip
    return cases


def spot_figures(result: np.ndarray, case: SpotCase) -> dict:
    """The bench's dE, lf_dE and texture_ratio of one filled crop."""
    spot = SimpleNamespace(kind=case.kind, center=(0.0, 0.0), footprint=case.footprint)
    return spot_removal_metrics(result, case.clean, spot, scale=case.scale)


def summary(results: list[np.ndarray], cases) -> dict:
    """Mean dE and lf_dE, texture_ok and the median texture ratio over the cases."""
    figures = [spot_figures(result, case) for result, case in zip(results, cases)]
    ratios = np.array([f["texture_ratio"] for f in figures], dtype=float)
    ratios = ratios[~np.isnan(ratios)]
    return {
        "dE": float(np.mean([f["dE"] for f in figures])),
        "lf_dE": float(np.mean([f["lf_dE"] for f in figures])),
        "texture_ok": float(np.mean((ratios >= 0.7) & (ratios <= 1.3))) if ratios.size else np.nan,
        "texture_median": float(np.median(ratios)) if ratios.size else np.nan,
        "n_texture": int(ratios.size),
    }


def telea(case: SpotCase) -> np.ndarray:
    """cv2.inpaint Telea (radius 3 px) on the crop, as the bench's peer runs it."""
    pixels = np.rint(case.image * 255.0).astype(np.uint8)
    filled = cv2.inpaint(pixels, case.hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    out = case.image.copy()
    out[case.hole] = filled[case.hole].astype(np.float32) / 255.0
    return out


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx * xx + yy * yy <= radius * radius
