"""What every detector mode offers the pipeline."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .types import Detection

__all__ = ["Detector"]


@runtime_checkable
class Detector(Protocol):
    """Finds blemishes in one photo.

    ``image`` is ``(H, W, 3)`` float32 RGB in ``[0, 1]`` in the stored pixel grid;
    ``orientation`` is its EXIF orientation (1..8), so faces can be parsed upright. The
    returned labels and masks are in the stored grid. One detector may serve one thread
    at a time, unless it has a true ``thread_safe`` attribute (it keeps nothing of a photo).
    A detector with a true ``reads_stored_integers`` attribute also takes the photo's stored
    integers (uint8 or uint16, full scale = 1.0) and finds the same blemishes in them; the
    pipeline then spares it a float copy of the whole photo.
    """

    name: str

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection: ...
