"""The detection bench's photo set: real photos from many packages, their skin and facial features.

The catalogue ``bench/photos.toml`` names each photo's package (see :mod:`.sources`), file, crop,
kind (``portrait`` or ``closeup``) and skin-tone group; ``bench/split.toml`` splits them into dev
and test; ``bench/photo_regions.json`` holds landmark outlines per portrait.

How the skin where spots may be planted is derived (``SetPhoto.photo.skin``):

1. Portraits: inside the face ovals of ``photo_regions.json`` (MediaPipe Face Landmarker, 478
   points, run once on each photo as loaded and checked by eye on rendered overlays), minus the
   eye, brow, lip and nose outlines grown by ``FEATURE_MARGIN`` px at face scale. Close-ups: the
   whole frame.
2. Then the tests of :func:`.photos.skin_region`: skin colour in CIE Lab, low gradient of the
   smoothed L* (no wrinkle folds, rims, hair edges), no dark outliers (lashes, stray hairs,
   stubble), eroded, small fragments dropped. Close-ups also drop hairs.
``dermapred`` keeps its own region from :mod:`.photos` (its two real moles are excluded by hand).

The feature outlines (``SetPhoto.features``: eyes, brows, lips) are fixed ground truth for the
"nothing planted" check: no detector mask pixel may fall inside them. They come from this file,
not from the detector under test.
"""

from __future__ import annotations

import json
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.draw import polygon as draw_polygon

from skinretouch.benchmark.photos import (
    DARK_OUTLIER_DILATION,
    DARK_OUTLIER_DROP,
    DARK_OUTLIER_SIGMA,
    DEFAULT_CACHE_DIR,
    BenchPhoto,
    load_bench_photos,
    skin_region,
)
from skinretouch.benchmark.sources import PhotoSource, SourceUnavailable, fetch_member
from skinretouch.scale import image_scale

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "BENCH_DIR",
    "FEATURE_KINDS",
    "POSES",
    "TONES",
    "SetPhoto",
    "Split",
    "load_catalogue",
    "load_pixels",
    "load_set_photos",
    "load_split",
]

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
TONES = ("light", "medium", "dark")
FEATURE_KINDS = ("left_eye", "right_eye", "left_brow", "right_brow", "lips")
EXCLUDED_KINDS = FEATURE_KINDS + ("nose",)
FEATURE_MARGIN = 6.0  # px at face scale kept between planted spots and eyes, brows, lips, nose
# Very dark skin in dim light reaches L* 15-25: the colour test of .photos (L* >= 30) would drop it.
MIN_SKIN_LIGHTNESS = 12.0
# skin_colour = "own" in photos.toml: the colour test follows the face's own skin (see
# own_skin_colour_test); "fixed" (default) keeps the fixed Lab ranges of .photos.
SKIN_COLOUR_TESTS = ("fixed", "own")
# Head pose in photos.toml (frontal by default); the others are listed apart in the bench's
# nothing-planted check, where Haar-box face parsing used to fail.
POSES = ("frontal", "tilted", "three-quarter", "sideways")
OWN_SKIN_MIN_L = 8.0
OWN_SKIN_L_BELOW = 18.0
OWN_SKIN_MIN_CHROMA = 1.5
OWN_SKIN_HUE_SPAN_DEG = 60.0
OWN_DARK_SIGMAS = 3.0
FORBIDDEN_PACKAGES = ("face_recognition", "face-recognition", "py-feat", "menpo", "kphotoalbum")


@dataclass
class CatalogueEntry:
    name: str
    source: str
    file: str
    kind: str
    tone: str
    crop: tuple[int, int, int, int] | None = None
    ita_deg: float | None = None
    skin_colour: str = "fixed"
    pose: str = "frontal"
    face_width_px: float | None = None  # close-ups cut from a portrait: that face's width
    notes: str = ""


@dataclass
class SetPhoto:
    """One bench photo with its ground truth beyond the pixels."""

    name: str
    tone: str
    kind: str
    source: str
    photo: BenchPhoto
    features: dict[str, list[np.ndarray]] = field(default_factory=dict)  # kind -> (n, 2) x, y
    pose: str = "frontal"

    def feature_mask(self, kinds=FEATURE_KINDS) -> np.ndarray:
        """Pixels inside the given feature outlines (eyes, brows, lips by default)."""
        return _polygons_mask(
            [poly for kind in kinds for poly in self.features.get(kind, [])], self.photo.rgb.shape[:2]
        )


@dataclass(frozen=True)
class Split:
    dev_photos: tuple[str, ...]
    test_photos: tuple[str, ...]
    dev_style: str
    test_style: str
    real_acne_rule: str

    def photos(self, part: str) -> tuple[str, ...]:
        return {"dev": self.dev_photos, "test": self.test_photos}[part]

    def style(self, part: str) -> str:
        return {"dev": self.dev_style, "test": self.test_style}[part]

    def real_acne_part(self, file_name: str) -> str:
        """``dev`` or ``test`` for a file of ``../shared/real-acne`` (numbered ``NN_...``)."""
        if self.real_acne_rule != "odd-dev-even-test":
            raise ValueError(f"unknown real_acne rule {self.real_acne_rule!r}")
        number = int(file_name.split("_", 1)[0])
        return "dev" if number % 2 else "test"


def load_catalogue(path: Path | None = None) -> tuple[dict[str, PhotoSource], dict[str, CatalogueEntry]]:
    """Sources and photos of ``bench/photos.toml``, validated."""
    path = Path(path) if path is not None else BENCH_DIR / "photos.toml"
    data = tomllib.loads(path.read_text())
    sources = {
        name: PhotoSource(name, spec["registry"], spec["package"], spec["licence"])
        for name, spec in data.get("sources", {}).items()
    }
    for source in sources.values():
        package = source.package.split("==")[0].split("@")[0].lower() or source.package.lower()
        if package.strip("@").split("/")[-1] in FORBIDDEN_PACKAGES:
            raise ValueError(f"{path}: source {source.name!r} uses a package reserved for evaluation")
    entries: dict[str, CatalogueEntry] = {}
    for item in data.get("photo", []):
        entry = CatalogueEntry(
            name=item["name"],
            source=item["source"],
            file=item["file"],
            kind=item["kind"],
            tone=item["tone"],
            crop=tuple(item["crop"]) if "crop" in item else None,
            ita_deg=item.get("ita_deg"),
            skin_colour=item.get("skin_colour", "fixed"),
            pose=item.get("pose", "frontal"),
            face_width_px=item.get("face_width_px"),
            notes=item.get("notes", ""),
        )
        if entry.name in entries:
            raise ValueError(f"{path}: photo {entry.name!r} listed twice")
        if entry.source not in sources:
            raise ValueError(f"{path}: photo {entry.name!r} names unknown source {entry.source!r}")
        if entry.tone not in TONES:
            raise ValueError(f"{path}: photo {entry.name!r} has tone {entry.tone!r}, not one of {TONES}")
        if entry.kind not in ("portrait", "closeup"):
            raise ValueError(f"{path}: photo {entry.name!r} has kind {entry.kind!r}")
        if entry.pose not in POSES:
            raise ValueError(f"{path}: photo {entry.name!r} has pose {entry.pose!r}, not one of {POSES}")
        if entry.skin_colour not in SKIN_COLOUR_TESTS:
            raise ValueError(f"{path}: photo {entry.name!r} has skin_colour {entry.skin_colour!r}, "
                             f"not one of {SKIN_COLOUR_TESTS}")
        entries[entry.name] = entry
    return sources, entries


def load_split(path: Path | None = None) -> Split:
    """The dev/test split of ``bench/split.toml``."""
    path = Path(path) if path is not None else BENCH_DIR / "split.toml"
    data = tomllib.loads(path.read_text())
    return Split(
        dev_photos=tuple(data["photos"]["dev"]),
        test_photos=tuple(data["photos"]["test"]),
        dev_style=data["planting"]["dev"],
        test_style=data["planting"]["test"],
        real_acne_rule=data["real_acne"]["rule"],
    )


def load_regions(path: Path | None = None) -> dict:
    path = Path(path) if path is not None else BENCH_DIR / "photo_regions.json"
    return json.loads(path.read_text())["photos"]


def load_set_photos(names=None, *, cache_dir: Path | None = None) -> list[SetPhoto]:
    """Load catalogue photos (all by default), skipping with a warning those not obtainable."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    sources, entries = load_catalogue()
    regions = load_regions()
    wanted = list(entries) if names is None else list(names)
    unknown = [name for name in wanted if name not in entries]
    if unknown:
        raise ValueError(f"unknown bench photos {unknown}; known: {sorted(entries)}")
    photos = []
    for name in wanted:
        entry = entries[name]
        try:
            photos.append(_load_one(entry, sources[entry.source], regions.get(name), cache))
        except SourceUnavailable as error:
            warnings.warn(f"bench photo {name!r} skipped (source {entry.source}): {error}", stacklevel=2)
    return photos


def _load_one(entry: CatalogueEntry, source: PhotoSource, region: dict | None, cache: Path) -> SetPhoto:
    if entry.name == "dermapred":
        loaded = load_bench_photos(cache, names=["dermapred"])
        if not loaded:
            raise SourceUnavailable("dermapred wheel not obtainable")
        return SetPhoto(entry.name, entry.tone, entry.kind, entry.source, loaded[0], pose=entry.pose)
    rgb = load_pixels(entry, source, cache)
    features: dict[str, list[np.ndarray]] = {}
    ovals: list[np.ndarray] = []
    widths: list[float] = []
    if region is not None:
        if tuple(region["size"]) != (rgb.shape[1], rgb.shape[0]):
            raise ValueError(f"{entry.name}: photo_regions.json size {region['size']} != photo {rgb.shape[1::-1]}")
        for face in region["faces"]:
            ovals.append(np.asarray(face["oval"], dtype=np.float64))
            widths.append(float(face["width"]))
            for kind in EXCLUDED_KINDS:
                features.setdefault(kind, []).append(np.asarray(face[kind], dtype=np.float64))
    if entry.kind == "portrait" and not ovals:
        raise ValueError(f"{entry.name}: a portrait needs face outlines in photo_regions.json")
    height, width = rgb.shape[:2]
    face_width = float(np.median(widths)) if widths else entry.face_width_px
    scale = image_scale(height, width, face_width_px=face_width)
    if ovals:
        polygons = {f"face{i}": [tuple(p) for p in oval] for i, oval in enumerate(ovals)}
        excluded = _polygons_mask([p for kind in EXCLUDED_KINDS for p in features.get(kind, [])], (height, width))
        if entry.skin_colour == "own":
            upper_face = _polygons_mask(ovals, (height, width)) & ~excluded
            upper_face[int(max(p[:, 1].max() for p in features["nose"])) :] = False  # no beard
            skin = skin_region(rgb, scale=scale, polygons=polygons, exclude_dark=False,
                               **own_skin_colour_test(rgb, upper_face))  # fmt: skip
            skin &= ~own_dark_outliers(rgb, upper_face, scale=scale)
        else:
            skin = skin_region(rgb, scale=scale, polygons=polygons, min_lightness=MIN_SKIN_LIGHTNESS)
        radius = max(1, int(round(FEATURE_MARGIN * scale)))
        excluded = ndi.binary_dilation(excluded, structure=_disk(radius))
        skin &= ~excluded
    elif entry.skin_colour == "own":
        frame = np.ones((height, width), dtype=bool)
        skin = skin_region(rgb, scale=scale, polygons=None, exclude_hairs=True, exclude_dark=False,
                           **own_skin_colour_test(rgb, frame))  # fmt: skip
        skin &= ~own_dark_outliers(rgb, frame, scale=scale)
    else:
        skin = skin_region(
            rgb, scale=scale, polygons=None, exclude_hairs=True, min_lightness=MIN_SKIN_LIGHTNESS
        )
    photo = BenchPhoto(entry.name, rgb, skin, scale)
    return SetPhoto(entry.name, entry.tone, entry.kind, entry.source, photo, features, pose=entry.pose)


def load_pixels(entry: CatalogueEntry, source: PhotoSource, cache: Path) -> np.ndarray:
    """The photo of a catalogue entry as the bench sees it: upright, cropped, ``(H, W, 3)`` uint8.

    The catalogue's crops and the outlines of ``photo_regions.json`` are in this view. A
    palette or transparent file (cut-out headshots) is read through RGBA, its hidden
    colours kept as stored.
    """
    path = fetch_member(source, entry.file, cache)
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("P", "PA", "LA", "RGBA"):
            upright = upright.convert("RGBA")
        rgb = np.asarray(upright.convert("RGB"), dtype=np.uint8)
    if entry.crop is not None:
        x0, y0, x1, y1 = entry.crop
        if not (0 <= x0 < x1 <= rgb.shape[1] and 0 <= y0 < y1 <= rgb.shape[0]):
            raise ValueError(f"{entry.name}: crop {entry.crop} outside the photo ({rgb.shape[1]}x{rgb.shape[0]})")
        rgb = rgb[y0:y1, x0:x1]
    return np.ascontiguousarray(rgb)


def own_skin_colour_test(rgb: np.ndarray, face: np.ndarray) -> dict[str, float | tuple[float, float]]:
    """Skin-colour bounds for :func:`.photos.skin_region` taken from the face's own skin.

    For skin the fixed test misses (very dark skin under cool studio light reads nearly grey:
    chroma 1-8, hue down to -70 degrees): lightness down to ``OWN_SKIN_L_BELOW`` under the
    median of ``face`` (a beard is darker still) but not under ``OWN_SKIN_MIN_L``, chroma from
    ``OWN_SKIN_MIN_CHROMA``, hue within ``OWN_SKIN_HUE_SPAN_DEG`` of the median hue of the face
    oval's pixels outside eyes, brows, lips and nose.
    """
    lab = rgb2lab(rgb[face]) if face.any() else np.zeros((1, 3))
    hue = float(np.degrees(np.arctan2(np.median(lab[:, 2]), np.median(lab[:, 1]))))
    return {
        "min_lightness": max(OWN_SKIN_MIN_L, float(np.median(lab[:, 0])) - OWN_SKIN_L_BELOW),
        "min_chroma": OWN_SKIN_MIN_CHROMA,
        "hue_range_deg": (hue - OWN_SKIN_HUE_SPAN_DEG, hue + OWN_SKIN_HUE_SPAN_DEG),
    }


def own_dark_outliers(rgb: np.ndarray, face: np.ndarray, *, scale: float) -> np.ndarray:
    """Dark marks (lashes, stray hairs, stubble) judged against the face's own texture.

    As step 4 of :mod:`.photos` (pixels below their local mean, cut out with a ring), but
    the drop is at least ``OWN_DARK_SIGMAS`` robust standard deviations of L* minus its local
    mean over ``face``: very dark skin under studio light has pores and sheen of 5-7 L*, which
    the fixed 8 L* drop would cut out as marks nearly everywhere.
    """
    lightness = rgb2lab(rgb)[..., 0]
    local_mean = ndi.gaussian_filter(lightness, DARK_OUTLIER_SIGMA * scale)
    residual = (lightness - local_mean)[face] if face.any() else np.zeros(1)
    sigma = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    drop = max(DARK_OUTLIER_DROP, OWN_DARK_SIGMAS * sigma)
    dark = lightness < local_mean - drop
    return ndi.binary_dilation(dark, structure=_disk(max(1, int(round(DARK_OUTLIER_DILATION * scale)))))


def _polygons_mask(polygons, shape) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for poly in polygons:
        rr, cc = draw_polygon(poly[:, 1], poly[:, 0], shape=shape)
        mask[rr, cc] = True
    return mask


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return xx * xx + yy * yy <= radius * radius
