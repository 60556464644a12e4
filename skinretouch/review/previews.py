"""Previews and full-resolution tiles of a photo, made once and cached as small JPEGs.

The browser never receives a full photo: it shows a preview whose long edge is at most
``PREVIEW_EDGE`` pixels, and at 100 % only the ``TILE_SIZE`` tiles in view. The first
request for a file makes its preview (from a reduced decode for JPEG) and starts making
its tiles in the background; later ones read the cache. An entry is keyed by the file's
real path, size and modification time, so a re-rendered photo gets new previews and an
old entry is never served for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_write_bytes
from ..imageio import DEFAULT_MAX_PIXELS, read_image
from ..imageio.registry import check_pixel_limit

__all__ = ["PREVIEW_EDGE", "TILE_SIZE", "PreviewCache", "Pyramid"]

PREVIEW_EDGE = 2048  # pixels, long edge
TILE_SIZE = 512  # pixels
JPEG_QUALITY = 88


@dataclass(frozen=True)
class Pyramid:
    """Where one file's preview and tiles are cached, and their geometry."""

    folder: Path
    source: Path
    width: int
    height: int

    @property
    def tiles_done(self) -> Path:
        return self.folder / "tiles.done"

    @property
    def preview(self) -> Path:
        return self.folder / "preview.jpg"

    def tile(self, column: int, row: int) -> Path:
        return self.folder / f"tile-{column}-{row}.jpg"

    @property
    def columns(self) -> int:
        return -(-self.width // TILE_SIZE)

    @property
    def rows(self) -> int:
        return -(-self.height // TILE_SIZE)


class PreviewCache:
    """Makes and finds the cached previews and tiles under ``folder``.

    A preview is made on its first request, from a reduced decode where the format allows
    it (JPEG), so a photo opens quickly even the first time; the tiles, which need the full
    decode, are then made in the background and waited for only by a tile request.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._background = ThreadPoolExecutor(1, thread_name_prefix="skinretouch-tiles")

    def close(self) -> None:
        self._background.shutdown(wait=True, cancel_futures=True)

    def preview(self, path: Path) -> Pyramid:
        """The photo's cached preview (made if missing); its tiles follow in the background."""
        pyramid = self._pyramid(path)
        with self._lock_for(pyramid.folder.name, "preview"):
            if not pyramid.preview.is_file():
                atomic_write_bytes(pyramid.preview, _jpeg(_reduced(pyramid.source, pyramid.width, pyramid.height)))
        if not pyramid.tiles_done.is_file():
            self._background.submit(self.tiles, path)
        return pyramid

    def tiles(self, path: Path) -> Pyramid:
        """The photo's cached full-resolution tiles, made if missing (one full decode)."""
        pyramid = self._pyramid(path)
        with self._lock_for(pyramid.folder.name, "tiles"):
            if not pyramid.tiles_done.is_file():
                _write_tiles(pyramid, _as_rgb8(read_image(pyramid.source).pixels))
                atomic_write_bytes(pyramid.tiles_done, b"")  # last: all tiles are there
        return pyramid

    def _pyramid(self, path: Path) -> Pyramid:
        real = Path(os.path.realpath(path))
        stat = os.stat(real)
        digest = hashlib.sha256(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        folder = self.folder / digest
        with self._lock_for(digest, "size"):
            size_file = folder / "size.txt"
            if not size_file.is_file():
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    with Image.open(real) as picture:  # the header only
                        width, height = picture.size
                except (OSError, Image.DecompressionBombError):  # the project's reader says why, or copes
                    height, width = read_image(real).pixels.shape[:2]
                check_pixel_limit(width, height, DEFAULT_MAX_PIXELS)
                atomic_write_bytes(size_file, f"{width} {height}\n".encode())
            width, height = (int(v) for v in size_file.read_text().split())
        return Pyramid(folder=folder, source=real, width=width, height=height)

    def _lock_for(self, digest: str, what: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault((digest, what), threading.Lock())


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The preview's size: the photo's, shrunk so its long edge is at most PREVIEW_EDGE."""
    factor = min(1.0, PREVIEW_EDGE / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _reduced(source: Path, width: int, height: int) -> Image.Image:
    """The photo at preview size; JPEGs are decoded at 1/2-1/8 scale straight away."""
    target = preview_size(width, height)
    try:
        with Image.open(source) as picture:
            if picture.format == "JPEG" and picture.mode in ("RGB", "L"):
                picture.draft("RGB", target)  # DCT scaling: a 24 MP photo decodes in a fraction
                reduced = picture.convert("RGB")
                return reduced.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except OSError:
        pass  # the project's reader below says what is wrong with it
    picture = Image.fromarray(_as_rgb8(read_image(source).pixels))
    return picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _write_tiles(pyramid: Pyramid, pixels: np.ndarray) -> None:
    picture = Image.fromarray(pixels)
    for row in range(pyramid.rows):
        for column in range(pyramid.columns):
            box = (column * TILE_SIZE, row * TILE_SIZE,
                   min(pyramid.width, (column + 1) * TILE_SIZE), min(pyramid.height, (row + 1) * TILE_SIZE))  # fmt: skip
            atomic_write_bytes(pyramid.tile(column, row), _jpeg(picture.crop(box)))


def _jpeg(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def _as_rgb8(pixels: np.ndarray) -> np.ndarray:
    """8-bit RGB for display (16-bit photos keep their top byte)."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])
