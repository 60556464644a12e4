"""Processed photos for the review page's tests, made on the fly (synthetic, no third-party photo)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from skinretouch.config import Config
from skinretouch.pipeline import Retoucher
from skinretouch.files.report import InputInfo, Report
from skinretouch.files.stage import encode_mask_png, process_file
from skinretouch.results import RegionRecord
from skinretouch.sidecars import output_paths

# Three dark spots planted on the synthetic skin, as (x, y, radius) in pixels.
SPOTS = ((110, 90, 7), (250, 150, 8), (380, 250, 6))
SIZE = (480, 360)  # width, height


def skin_picture(width: int, height: int, *, seed: int = 3) -> np.ndarray:
    """Skin-coloured float32 RGB with pore-scale texture and soft shading."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 0.92 + 0.08 * np.cos((xx / width - 0.4) * 2.5) * np.cos((yy / height - 0.5) * 2.0)
    base = np.array([0.86, 0.64, 0.53], np.float32)
    grain = rng.normal(0, 0.018, (height, width)).astype(np.float32)
    return np.clip(base[None, None, :] * shade[..., None] + grain[..., None], 0, 1)


def disc(height: int, width: int, x: float, y: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def make_processed_photo(folder: Path, name: str = "portrait.png") -> Path:
    """A PNG with three dark spots, retouched by the real pipeline with the spots' mask.

    The spots' exact mask (dilated by 2 px) stands in for the detector, so the three
    regions are known: the automatic result the photographer then reviews.
    """
    width, height = SIZE
    picture = skin_picture(width, height)
    mask = np.zeros((height, width), bool)
    for x, y, radius in SPOTS:
        spot = disc(height, width, x, y, radius)
        picture[spot] *= np.array([0.55, 0.42, 0.40], np.float32)
        mask |= disc(height, width, x, y, radius + 2)
    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / name
    Image.fromarray(np.rint(picture * 255).astype(np.uint8)).save(photo)
    mask_file = folder.parent / f"{name}.spots.png"
    mask_file.write_bytes(encode_mask_png(mask))
    with Retoucher(Config()) as retoucher:
        outcome = process_file(retoucher, photo, mask_path=mask_file)
    assert outcome.status == "ok", outcome.error
    return photo


def make_big_processed_photo(folder: Path, *, width: int = 6000, height: int = 4000) -> Path:
    """A 24 MP JPEG with a retouched copy, mask and report (written directly, no retouching:
    only the page's handling of a big photo is under test)."""
    rng = np.random.default_rng(5)
    small = skin_picture(width // 8, height // 8)
    big = np.repeat(np.repeat(np.rint(small * 255).astype(np.uint8), 8, axis=0), 8, axis=1)
    big = np.clip(big.astype(np.int16) + rng.integers(-6, 7, big.shape[:2], dtype=np.int16)[..., None], 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    photo = folder / "big.jpg"
    Image.fromarray(big).save(photo, quality=90)
    paths = output_paths(photo)
    mask = np.zeros((height, width), bool)
    regions = []
    for index, (x, y) in enumerate(((1500, 1200), (3000, 2000), (4500, 2800))):
        mask |= _box_disc(mask.shape, x, y, 20)
        regions.append(RegionRecord(id=index, bbox=(x - 20, y - 20, 41, 41), area_px=1257, area_fraction=1257 / (width * height),
                                    kind="dark_spot", score=0.8, route="freqsplit", engine="freqsplit-numba",
                                    hard_case=index == 2, hard_reasons=["texture_ratio_out_of_band"] if index == 2 else [],
                                    texture_ratio=1.0))  # fmt: skip
    Image.fromarray(big).save(paths.image, quality=90)
    paths.mask.write_bytes(encode_mask_png(mask))
    report = Report(input=InputInfo(path=str(photo.absolute()), sha256=hashlib.sha256(photo.read_bytes()).hexdigest(),
                                    width=width, height=height, bit_depth=8, format="jpeg"))  # fmt: skip
    report.outputs = {"image": str(paths.image.absolute()), "mask": str(paths.mask.absolute())}
    report.regions = regions
    paths.report.write_bytes(report.to_json())
    return photo


def _box_disc(shape: tuple[int, int], x: int, y: int, radius: int) -> np.ndarray:
    """A disc drawn only inside its box (a full-frame grid would cost 24 MP of work)."""
    out = np.zeros(shape, bool)
    yy, xx = np.mgrid[y - radius : y + radius + 1, x - radius : x + radius + 1]
    out[y - radius : y + radius + 1, x - radius : x + radius + 1] = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    return out
