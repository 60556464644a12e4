"""What the in-memory pipeline returns: new pixels per region and a record of each repair.

These types carry no file or report knowledge; the file stage
(:mod:`skinretouch.files`) turns them into a photo, a mask and a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .detection import Detection
from .imageio import from_float, to_float

__all__ = ["Patch", "RegionRecord", "RetouchResult", "apply_patches"]


@dataclass(frozen=True)
class Patch:
    """New pixel values for one region: ``values`` go where ``hole`` is true in ``window``."""

    window: tuple[slice, slice]
    hole: np.ndarray
    values: np.ndarray  # (n, 3) float32, the hole's pixels in raster order


@dataclass(kw_only=True)
class RegionRecord:
    """How one region was repaired (one entry of the report's ``regions``)."""

    id: int
    bbox: tuple[int, int, int, int]
    area_px: int
    area_fraction: float
    kind: str
    score: float
    route: str  # freqsplit | patchmatch | lama | flux
    engine: str
    hard_case: bool
    hard_reasons: list[str]
    texture_ratio: float | None
    fallback_reason: str | None = None


@dataclass(kw_only=True)
class RetouchResult:
    """What :meth:`skinretouch.pipeline.Retoucher.retouch` produced for one image."""

    original: np.ndarray  # float32 RGB; the stored integers for a photo handed over (OwnedPhoto)
    patches: list[Patch]
    applied_mask: np.ndarray
    regions: list[RegionRecord]
    detection: Detection
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def pixels(self) -> np.ndarray:
        """The retouched image as float32 RGB (a new array)."""
        out = self.original.copy() if self.original.dtype == np.float32 else to_float(self.original)
        for patch in self.patches:
            out[patch.window][patch.hole] = patch.values
        return out

    def apply_to(self, stored: np.ndarray, *, in_place: bool = False) -> np.ndarray:
        """The retouched image in the stored integer dtype; untouched pixels bit-identical.

        New values are quantised by :func:`skinretouch.imageio.from_float`, the one rule
        for turning float pixels into stored ones. ``in_place``: written into ``stored``
        itself (returned), for a caller that no longer needs the original pixels.
        """
        return apply_patches(stored, self.patches, in_place=in_place)


def apply_patches(stored: np.ndarray, patches: list[Patch], *, in_place: bool = False) -> np.ndarray:
    """:meth:`RetouchResult.apply_to` for a caller that has let the result (and its
    detection's full-size maps) go and kept only the patches."""
    bit_depth = 8 * np.dtype(stored.dtype).itemsize
    out = stored if in_place else stored.copy()
    for patch in patches:
        out[patch.window][patch.hole] = from_float(patch.values, bit_depth)
    return out
