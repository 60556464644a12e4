"""A user's mask is filled at the scale of the face it lies on, not at a guess from the size.

The fill's texture band follows the face scale. A tight head shot guesses its scale from its
size far too small (1.76 here against the face's 3.5), and a large mask then came out flat
at the scale where the skin's grain shows.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from skinretouch.config import Config
from skinretouch.detection import faces
from skinretouch.kernels.texture import texture_ratio
from skinretouch.pipeline import Retoucher
from skinretouch.results import apply_patches
from skinretouch.scale import image_scale

pytestmark = pytest.mark.skipif(not faces.landmarker_available(), reason="face_landmarker.task not installed (run make)")


@pytest.fixture(scope="module")
def head_shot() -> np.ndarray:
    """The astronaut's head enlarged x10 to 1800 x 1800 (a face about 1000 px wide)."""
    return cv2.resize(astronaut()[20:200, 150:330], (1800, 1800), interpolation=cv2.INTER_CUBIC)


def test_user_mask_keeps_the_skin_grain_at_the_face_scale(head_shot):
    yy, xx = np.mgrid[:1800, :1800]
    cheek = ((yy - 1000) / 80.0) ** 2 + ((xx - 520) / 60.0) ** 2 <= 1.0
    with Retoucher(Config()) as retoucher:
        result = retoucher.retouch(head_shot.astype(np.float32) / 255.0, mask=cheek)
    face = faces.face_scale(head_shot.astype(np.float32) / 255.0)

    assert face is not None and face > 1.5 * image_scale(1800, 1800)  # the guess is far off
    assert result.detection.scale == pytest.approx(face)
    filled = apply_patches(head_shot, result.patches).astype(np.float32) / 255.0
    assert np.array_equal(filled[~cheek], head_shot[~cheek].astype(np.float32) / 255.0)
    # Measured: 0.83 at the face's scale (0.45 when filled at the size guess).
    assert 0.7 <= texture_ratio(filled, cheek, scale=face) <= 1.3
