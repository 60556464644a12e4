"""What a detector hands to the pipeline: labelled spot pixels and protected features.

Conventions (fixed at the pipeline boundary): images are ``(H, W, 3)`` float32 RGB in
``[0, 1]``; masks are ``(H, W)`` bool; ``bbox`` is ``(x, y, width, height)`` in stored
pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["BBox", "Detection", "ProtectedFeature", "Spot", "bbox_of"]

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
    """

    labels: np.ndarray
    spots: list[Spot]
    protected_mask: np.ndarray
    protected: list[ProtectedFeature] = field(default_factory=list)
    scale: float = 1.0
    method: str = "skin_colour"
    label_boxes: np.ndarray | None = None
    labels_are_components: bool = False

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
