"""Detection on each panel of a collage (:mod:`.panels`), merged into one photo's detection."""

from __future__ import annotations

import dataclasses

import numpy as np

from .panels import find_panels
from .types import BBox, Background, Detection, ProtectedFeature

__all__ = ["CollageDetector", "merge_detections"]


class CollageDetector:
    """Any detector, run on each panel of a collage as on a photo of its own.

    A photo that is no collage goes to ``base`` whole, unchanged.
    """

    def __init__(self, base) -> None:
        self.base = base
        self.name = getattr(base, "name", "detector")
        self.thread_safe = getattr(base, "thread_safe", False)
        self.reads_stored_integers = getattr(base, "reads_stored_integers", False)

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        panels = find_panels(image)
        if len(panels) == 1:
            return self.base.detect(image, orientation=orientation)
        parts = []
        for x, y, w, h in panels:
            panel = np.ascontiguousarray(image[y : y + h, x : x + w])
            parts.append(((x, y, w, h), self.base.detect(panel, orientation=orientation)))
        return merge_detections(parts, image.shape[:2])


def merge_detections(parts: list[tuple[BBox, Detection]], shape: tuple[int, int]) -> Detection:
    """One detection of a photo of ``shape`` from its panels' detections (each in its panel's
    own pixels; at least one): labels renumbered after one another, boxes moved to the photo.

    The photo gets one face scale, the scale of the panel with the most spot pixels (the
    removal sizes its filters by it; the panels of one collage rarely differ much).
    """
    height, width = shape
    labels = np.zeros((height, width), np.int32)
    protected_mask = np.zeros((height, width), bool)
    spots, protected = [], []
    offset = 0
    scale, most_spot_px = parts[0][1].scale, -1
    for (x, y, w, h), part in parts:
        own = part.labels
        window = labels[y : y + h, x : x + w]
        np.add(own, offset, out=window, where=own > 0)
        protected_mask[y : y + h, x : x + w] = part.protected_mask
        spots.extend(dataclasses.replace(spot, label=spot.label + offset) for spot in part.spots)
        protected.extend(
            ProtectedFeature(kind=f.kind, bbox=(f.bbox[0] + x, f.bbox[1] + y, f.bbox[2], f.bbox[3]))
            for f in part.protected
        )
        spot_px = int(np.count_nonzero(own))
        if spot_px > most_spot_px:
            scale, most_spot_px = part.scale, spot_px
        offset += max([int(own.max(initial=0))] + [spot.label for spot in part.spots])
    methods = [part.method for _, part in parts]
    background = Background(tuple(tile for (x, y, _, _), part in parts if part.background is not None
                                  for tile in part.background.moved(y, x).tiles))  # fmt: skip
    return Detection(
        labels=labels,
        spots=spots,
        protected_mask=protected_mask,
        protected=protected,
        scale=float(scale),
        method="face" if "face" in methods else methods[0],
        labels_are_components=all(part.labels_are_components for _, part in parts),
        background=background if background.tiles else None,
    )
