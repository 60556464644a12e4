"""What a detector hands to the pipeline: labelled spot pixels and protected features.

Conventions (fixed at the pipeline boundary): images are ``(H, W, 3)`` float32 RGB in
``[0, 1]``; masks are ``(H, W)`` bool; ``bbox`` is ``(x, y, width, height)`` in stored
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["BBox", "Background", "BackgroundTile", "Detection", "ProtectedFeature", "Spot", "bbox_of"]

BBox = tuple[int, int, int, int]

SpotKind = Literal["papule", "pustule", "dark_spot", "blackhead", "user_mask", "reference", "anomaly", "spot"]
FeatureKind = Literal["mole", "freckle", "eye", "lips", "brow", "nostril", "hair"]


@dataclass(frozen=True, kw_only=True)
class Spot:
    """One detected blemish: its label in :attr:`Detection.labels`, kind and score."""

    label: int
    kind: SpotKind
    score: float


@dataclass(frozen=True, kw_only=True)
class ProtectedFeature:
    """Something that must never be changed (nor used as a texture donor)."""

    kind: FeatureKind
    bbox: BBox


@dataclass(frozen=True)
class BackgroundTile:
    """Where a detector saw no skin in one rectangle of the photo, on its own coarser grid:
    ``small`` (bool, True = not skin) spans the photo's rows ``y .. y + height`` and columns
    ``x .. x + width``."""

    small: np.ndarray
    y: int
    x: int
    height: int
    width: int


@dataclass(frozen=True)
class Background:
    """What is not skin around the spots (a backdrop, clothes, a black border, a mass of
    hair): removal takes neither tone nor texture from it. Kept on the detector's working
    grid(s), a few tiles, and read window by window: a whole-photo map of a portrait's
    background would be dense (100 MB at 100 megapixels). Outside every tile nothing is
    known, and nothing is marked."""

    tiles: tuple[BackgroundTile, ...] = ()

    def window(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The background of the photo's pixels ``[y0:y1, x0:x1]`` (nearest grid cell)."""
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), bool)
        for tile in self.tiles:
            top, bottom = max(y0, tile.y), min(y1, tile.y + tile.height)
            left, right = max(x0, tile.x), min(x1, tile.x + tile.width)
            if top >= bottom or left >= right:
                continue
            rows_small, cols_small = tile.small.shape
            rows = ((np.arange(top, bottom) - tile.y + 0.5) * rows_small / tile.height).astype(np.int64)
            cols = ((np.arange(left, right) - tile.x + 0.5) * cols_small / tile.width).astype(np.int64)
            rows = np.clip(rows, 0, rows_small - 1)
            cols = np.clip(cols, 0, cols_small - 1)
            out[top - y0 : bottom - y0, left - x0 : right - x0] = tile.small[np.ix_(rows, cols)]
        return out

    def moved(self, dy: int, dx: int) -> "Background":
        """The same background for a photo this one sits in at offset ``(dy, dx)``."""
        return Background(tuple(BackgroundTile(t.small, t.y + dy, t.x + dx, t.height, t.width) for t in self.tiles))


@dataclass(kw_only=True)
class Detection:
    """The detector's output for one photo.

    Attributes
    ----------
    labels : (H, W) int32 ndarray
        0 where there is no spot, ``spot.label`` on the pixels of each spot (not dilated).
    spots : list of Spot
        One entry per non-zero label.
    protected_mask : (H, W) bool ndarray
        Pixels of protected features (eyes, lips, brows, nostrils, hair, moles, freckles).
        Removal never changes them and never copies texture from them.
    protected : list of ProtectedFeature
        The protected features, for the report.
    scale : float
        Pixels per unit of "face scale" (1.0 for a face about 256 px wide); kernels multiply
        their radii and sigmas by it.
    method : str
        How skin was found: ``"face"`` (landmarks) or ``"skin_colour"`` (fallback), or
        ``"user_mask"`` when the mask came from the user.
    label_boxes : (n + 1, 4) int64 ndarray or None
        Row ``k`` is label ``k``'s ``(y0, x0, y1, x1)`` (end exclusive), when whoever made
        the labels already knows them (it saves a pass over the whole photo); ``None``
        otherwise.
    labels_are_components : bool
        True when every label is exactly one 8-connected component of the spot pixels (as
        for a user's mask): undilated, unprotected regions are then the labels themselves.
    background : Background or None
        What the detector saw was not skin, when it looked (see :class:`Background`).
    """

    labels: np.ndarray
    spots: list[Spot]
    protected_mask: np.ndarray
    protected: list[ProtectedFeature] = field(default_factory=list)
    scale: float = 1.0
    method: str = "skin_colour"
    label_boxes: np.ndarray | None = None
    labels_are_components: bool = False
    background: Background | None = None

    @property
    def mask(self) -> np.ndarray:
        """All spot pixels as one bool mask."""
        return self.labels > 0


def bbox_of(mask: np.ndarray) -> BBox:
    """Tight ``(x, y, width, height)`` of the true pixels of a 2-D bool mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0, 0, 0, 0)
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    return (x0, y0, x1 - x0, y1 - y0)
