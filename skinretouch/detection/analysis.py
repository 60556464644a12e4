"""The analysis of one photo that every detection mode shares.

The classical detector's first steps (faces, the working grid, the skin map, hair strands,
protected features) are what the reference, anomaly and ONNX modes need too; they get
this typed record from :meth:`ClassicalDetector.analyse` instead of running the whole
classical detection and throwing its spots away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .grid import grow_mask
from .haar_faces import FaceLayout
from .types import BBox, Detection, ProtectedFeature

__all__ = ["SkinAnalysis"]


@dataclass(kw_only=True)
class SkinAnalysis:
    """Faces, skin and protected areas of one photo, on a working grid.

    The working grid is the search area ``roi`` (``(x, y, w, h)`` in stored pixels) shrunk
    by ``to_small`` (``(sx, sy)``, working px per stored px) so a face unit is at most a
    few px. Maps named ``*_small`` live on that grid; others on the stored grid.
    """

    shape: tuple[int, int]  # stored grid (H, W)
    faces: list[FaceLayout]
    method: str  # "face" or "skin_colour"
    scale: float  # stored px per face unit
    unit: float  # working px per face unit
    roi: BBox
    to_small: tuple[float, float]
    small: np.ndarray  # (sh, sw, 3) float32 RGB: the roi on the working grid
    lab_small: np.ndarray  # (sh, sw, 3) float32 Lab of ``small``
    skin_small: np.ndarray  # (sh, sw) float32 skin likelihood in [0, 1]
    hair_small: np.ndarray  # (sh, sw) bool hair strands and other thin dark valleys
    allowed_small: np.ndarray  # (sh, sw) bool: skin that may hold a spot
    protected_small: np.ndarray  # (sh, sw) bool: features found on the working grid
    protected_mask: np.ndarray  # (H, W) bool: eyes, brows, lips (landmark/Haar outlines)
    features: list[ProtectedFeature] = field(default_factory=list)

    def protection_only(self) -> Detection:
        """A detection with no spot: the protected features for modes that find spots
        their own way (hair strands and nostrils included, on the stored grid)."""
        h, w = self.shape
        protected = self.protected_mask.copy()
        rx, ry, rw, rh = self.roi
        protected[ry : ry + rh, rx : rx + rw] |= grow_mask(self.protected_small | self.hair_small, (rh, rw))
        return Detection(labels=np.zeros((h, w), np.int32), spots=[], protected_mask=protected,
                         protected=list(self.features), scale=float(self.scale), method=self.method)
