"""A picture of what a detector saw, for a person to check: spots by kind, protected features."""

from __future__ import annotations

import cv2
import numpy as np

from ..detection import Detection, bbox_of

__all__ = ["KIND_COLOURS", "debug_overlay"]

# RGB colours of spot outlines and feature boxes.
KIND_COLOURS: dict[str, tuple[int, int, int]] = {
    "papule": (255, 40, 40),
    "pustule": (255, 220, 0),
    "dark_spot": (40, 90, 255),
    "blackhead": (0, 230, 230),
    "user_mask": (255, 255, 255),
    "spot": (255, 255, 255),
    "mole": (200, 0, 200),
    "freckle": (200, 120, 255),
    "eye": (0, 200, 0),
    "brow": (0, 160, 90),
    "lips": (255, 80, 180),
    "nostril": (255, 150, 0),
    "hair": (150, 150, 150),
}
_PROTECTED_TINT = np.array([0, 255, 0], np.float32)


def debug_overlay(image: np.ndarray, detection: Detection) -> np.ndarray:
    """Draw a detection on its photo.

    Protected pixels are tinted green, each protected feature gets a labelled box, and each
    spot its outline in its kind's colour (:data:`KIND_COLOURS`) with its kind and score
    next to it. A legend of the spot kinds sits in the top-left corner.

    Parameters
    ----------
    image : (H, W, 3) float RGB in [0, 1] or uint8 RGB
    detection : Detection
        Of this image (same height and width).

    Returns
    -------
    (H, W, 3) uint8 RGB
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    if detection.labels.shape != image.shape[:2]:
        raise ValueError(
            f"detection is {detection.labels.shape}, image is {image.shape[:2]}"
        )
    if image.dtype == np.uint8:
        out = image.copy()
    else:
        out = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    h, w = out.shape[:2]
    # Line widths and text grow with the photo so they stay visible on 24 megapixels.
    thick = max(1, round(min(h, w) / 700))
    font = 0.35 * max(1.0, min(h, w) / 700)

    protected = detection.protected_mask
    if protected.any():
        tinted = out[protected].astype(np.float32) * 0.7 + _PROTECTED_TINT * 0.3
        out[protected] = tinted.astype(np.uint8)

    for feature in detection.protected:
        x, y, bw, bh = feature.bbox
        if bw <= 0 or bh <= 0:
            continue
        colour = KIND_COLOURS.get(feature.kind, (255, 255, 255))
        cv2.rectangle(out, (x, y), (x + bw - 1, y + bh - 1), colour, thick)
        if feature.kind != "hair":
            _label(out, feature.kind, (x, y - 2), colour, font, thick)

    for spot in detection.spots:
        spot_mask = detection.labels == spot.label
        x, y, bw, bh = bbox_of(spot_mask)
        if bw == 0:
            continue
        pad = 2
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(w, x + bw + pad), min(h, y + bh + pad)
        crop = spot_mask[y0:y1, x0:x1].astype(np.uint8)
        contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE,
                                       offset=(x0, y0))
        colour = KIND_COLOURS.get(spot.kind, (255, 255, 255))
        cv2.drawContours(out, contours, -1, colour, thick)
        _label(out, f"{spot.kind} {spot.score:.2f}", (x + bw + 2, y + bh // 2), colour,
               0.8 * font, thick)

    for i, kind in enumerate(("papule", "pustule", "dark_spot", "blackhead")):
        _label(out, kind, (4, int(14 * font / 0.35) * (i + 1)), KIND_COLOURS[kind], font, thick)
    return out


def _label(out: np.ndarray, text: str, origin: tuple[int, int], colour, font: float,
           thick: int) -> None:
    x, y = origin
    y = max(y, int(10 * font / 0.35))
    # A dark outline keeps the text readable on any skin tone.
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2,
                cv2.LINE_AA)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font, colour, thick, cv2.LINE_AA)
