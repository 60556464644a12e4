"""Previews and full-resolution tiles of a photo, made once and cached as small JPEGs.

The browser never receives a full photo: it shows a preview whose long edge is at most
``PREVIEW_EDGE`` pixels, and at 100 % only the ``TILE_SIZE`` tiles in view. The first
request for a file decodes it once and writes its preview and all its tiles; later ones
read the cache. An entry is keyed by the file's real path, size and modification time, so
a re-rendered photo gets new previews and an old entry is never served for it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import atomic_write_bytes
from ..imageio import read_image

__all__ = ["PREVIEW_EDGE", "TILE_SIZE", "PreviewCache", "Pyramid"]

PREVIEW_EDGE = 2048  # pixels, long edge
TILE_SIZE = 512  # pixels
JPEG_QUALITY = 88


@dataclass(frozen=True)
class Pyramid:
    """Where one file's preview and tiles are cached, and their geometry."""

    folder: Path
    width: int
    height: int

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
    """Makes and finds the cached previews and tiles under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def pyramid(self, path: Path) -> Pyramid:
        """The cached preview and tiles of the photo at ``path``, made if missing."""
        real = os.path.realpath(path)
        stat = os.stat(real)
        digest = hashlib.sha256(f"{real}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
        folder = self.folder / digest
        with self._lock_for(digest):
            size_file = folder / "size.txt"
            if size_file.is_file():
                width, height = (int(v) for v in size_file.read_text().split())
                return Pyramid(folder, width, height)
            folder.mkdir(parents=True, exist_ok=True)
            pixels = _as_rgb8(read_image(real).pixels)
            pyramid = Pyramid(folder, pixels.shape[1], pixels.shape[0])
            _write_pyramid(pyramid, pixels)
            # Written last: its presence says the entry is complete.
            atomic_write_bytes(size_file, f"{pyramid.width} {pyramid.height}\n".encode())
            return pyramid

    def _lock_for(self, digest: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(digest, threading.Lock())


def preview_size(width: int, height: int) -> tuple[int, int]:
    """The preview's size: the photo's, shrunk so its long edge is at most PREVIEW_EDGE."""
    factor = min(1.0, PREVIEW_EDGE / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _write_pyramid(pyramid: Pyramid, pixels: np.ndarray) -> None:
    picture = Image.fromarray(pixels)
    atomic_write_bytes(pyramid.preview, _jpeg(picture.resize(preview_size(pyramid.width, pyramid.height),
                                                              Image.Resampling.LANCZOS, reducing_gap=3.0)))  # fmt: skip
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
