"""The working scale: how many pixels one unit of "face scale" spans in a photo.

Radii and sigmas in the kernels and the bench are given at face scale (a face about
``REFERENCE_FACE_WIDTH_PX`` wide) and multiplied by the scale, so a 24-megapixel photo and
a 512-px thumbnail are treated alike.
"""

from __future__ import annotations

__all__ = ["REFERENCE_FACE_WIDTH_PX", "REFERENCE_SHORT_SIDE_PX", "image_scale"]

REFERENCE_FACE_WIDTH_PX = 256.0  # px; a face this wide has scale 1
REFERENCE_SHORT_SIDE_PX = 1024.0  # px; without a face, a photo this short side has scale 1


def image_scale(height: int, width: int, *, face_width_px: float | None = None) -> float:
    """Scale factor for a photo, from its face width when known, else from its size.

    Never below 1: small photos are not worked at sub-pixel radii.
    """
    if face_width_px is not None and face_width_px > 0:
        return max(1.0, face_width_px / REFERENCE_FACE_WIDTH_PX)
    return max(1.0, min(height, width) / REFERENCE_SHORT_SIDE_PX)
