"""Faces and their features, found offline with the Haar cascades OpenCV ships.

The cascades give a face box, and (less reliably) eye and smile boxes inside it. What they
miss is filled in from the face box's proportions, which for ``haarcascade_frontalface``
boxes are stable: eyes near 40 % of the height, the mouth near 80 %, the nostrils near
67 %. Features are then refined on the pixels (dark nostril blobs, red lips) and drawn as
generous protected areas: missing a blemish next to an eye costs far less than touching
the eye.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..logs import get_logger
from .pixels import as_bytes
from .types import BBox
from ..kernels.color import rgb_to_lab

__all__ = ["FaceLayout", "draw_feature_masks", "find_faces"]

log = get_logger(__name__)

# The cascades are run on a copy whose longer side is at most this many pixels: Haar
# features need no more, and a 6000-px photo would take seconds at full size.
DETECT_MAX_SIDE_PX = 320
# Smallest face searched, as a fraction of the shorter image side.
MIN_FACE_FRACTION = 0.1
# Eyes and mouth are searched in a copy of the face scaled to this width (px).
FEATURE_FACE_WIDTH_PX = 200


@dataclass(frozen=True, kw_only=True)
class FaceLayout:
    """One face and its features, boxes ``(x, y, w, h)`` in the photo's pixels.

    ``eyes_found``/``mouth_found`` say whether the cascade saw them (else the boxes are
    the face-proportion priors).
    """

    face: BBox
    eyes: tuple[BBox, ...]
    brows: tuple[BBox, ...]
    mouth: BBox
    nose: BBox
    eyes_found: int = 0
    mouth_found: bool = False
    extras: dict[str, float] = field(default_factory=dict)
    # Landmark outlines when the face came from the Face Landmarker (:mod:`.faces`); the
    # boxes above are then those outlines' bounding boxes.
    landmarks: object | None = None
    # Found only on the photo read as turned a quarter (:func:`.faces.find_faces`): its eyes,
    # brows, lips and nostrils are protected, but the search is not narrowed to it.
    guard_only: bool = False

    @property
    def width(self) -> int:
        """Face width in px (cheek to cheek: the Haar box's width, or the landmarks')."""
        if self.landmarks is not None:
            return max(1, round(self.landmarks.width))
        return self.face[2]


@functools.cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if classifier.empty():
        raise RuntimeError(f"OpenCV Haar cascade {name} could not be loaded")
    return classifier


def find_faces(image: np.ndarray) -> list[FaceLayout]:
    """Frontal faces in a photo, largest first, with their feature boxes.

    Parameters
    ----------
    image : (H, W, 3) RGB, float32 in [0, 1] or stored integers (uint8, uint16)

    Returns
    -------
    list of FaceLayout
        Faces at least half as wide as the largest one; empty when there is no face.
    """
    h, w = image.shape[:2]
    shrink = min(1.0, DETECT_MAX_SIDE_PX / max(h, w))
    # Shrink first, convert after: converting 24 megapixels costs more than detecting.
    small = _gray_u8(cv2.resize(image, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA))
    small = cv2.equalizeHist(small)
    min_side = max(24, int(MIN_FACE_FRACTION * min(small.shape)))
    boxes = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        small, scaleFactor=1.2, minNeighbors=6, minSize=(min_side, min_side)
    )
    if len(boxes) == 0:
        return []
    boxes = sorted(((int(x), int(y), int(bw), int(bh)) for x, y, bw, bh in boxes),
                   key=lambda b: -b[2])
    largest = boxes[0][2]
    faces = []
    for x, y, bw, bh in boxes:
        if bw < 0.5 * largest:
            continue
        face = _clip_box(
            (round(x / shrink), round(y / shrink), round(bw / shrink), round(bh / shrink)), h, w
        )
        faces.append(_layout(image, face))
    log.debug("faces", count=len(faces), boxes=[f.face for f in faces])
    return faces


def draw_feature_masks(shape: tuple[int, int], layout: FaceLayout) -> dict[str, np.ndarray]:
    """Protected areas of one face's features as bool masks of ``shape``.

    Returns
    -------
    dict
        ``{"eye": mask, "brow": mask, "lips": mask}`` (nostrils are found on pixels by the
        detector, inside ``layout.nose``).
    """
    # Drawn as 0/1 bytes (OpenCV draws on uint8) and returned as bool views of them: no copy
    # of three whole-photo maps.
    masks = {k: np.zeros(shape, np.uint8) for k in ("eye", "brow", "lips")}
    if layout.landmarks is not None:
        return _landmark_masks(shape, layout.landmarks, masks)
    for box in layout.eyes:
        _ellipse(masks["eye"], box, grow=1.15)
    for box in layout.brows:
        _ellipse(masks["brow"], box, grow=1.1)
    _ellipse(masks["lips"], layout.mouth, grow=1.1)
    return {k: v.view(bool) for k, v in masks.items()}


BROW_STRETCH = 1.15


def _stretch_along_axis(poly: np.ndarray, factor: float, *, away_from: np.ndarray) -> np.ndarray:
    """The polygon lengthened by ``factor`` along its long axis, on the end away from
    ``away_from`` only (a brow's tail; the gap between the brows stays skin)."""
    centre = poly.mean(axis=0)
    offsets = poly - centre
    _, _, axes = np.linalg.svd(offsets, full_matrices=False)
    axis = axes[0] if float((centre - away_from) @ axes[0]) >= 0 else -axes[0]
    along = np.maximum(offsets @ axis, 0.0)
    return (poly + np.outer(2.0 * (factor - 1.0) * along, axis)).astype(np.float32)


def _landmark_masks(shape, marks, masks) -> dict[str, np.ndarray]:
    """Feature polygons, grown by a margin in proportion to the face (lashes, the brow's
    stray hairs, the lip line's blur)."""
    width = marks.width
    grow = {"eye": 0.06 * width, "brow": 0.025 * width, "lips": 0.025 * width}
    # Brow landmarks run along the brow's middle; its tail and head hairs reach further.
    brows = tuple(_stretch_along_axis(p, BROW_STRETCH, away_from=marks.points[168]) for p in marks.brows)
    polygons = {"eye": marks.eyes, "brow": brows, "lips": (marks.lips,)}
    h, w = shape
    for kind, polys in polygons.items():
        radius = max(1, round(grow[kind]))
        for poly in polys:
            # Drawn and grown in the polygon's own window: a full-photo dilation with a
            # face-sized kernel costs ~100 ms at 24 megapixels.
            x0 = max(0, int(np.floor(poly[:, 0].min())) - radius - 1)
            y0 = max(0, int(np.floor(poly[:, 1].min())) - radius - 1)
            x1 = min(w, int(np.ceil(poly[:, 0].max())) + radius + 2)
            y1 = min(h, int(np.ceil(poly[:, 1].max())) + radius + 2)
            if x1 <= x0 or y1 <= y0:
                continue
            window = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(window, [np.round(poly - (x0, y0)).astype(np.int32)], 1)
            masks[kind][y0:y1, x0:x1] |= _grown(window, radius)
    return {k: v.view(bool) for k, v in masks.items()}


# Above this radius (px) a feature is grown through its distance transform: a dilation costs
# the kernel's area per pixel (0.3 s for the eyes of a 24-megapixel portrait, radius ~120).
DILATE_MAX_RADIUS = 48


def _grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` (uint8 0/1) dilated by OpenCV's elliptic kernel of ``radius``; for a large
    radius by the Euclidean disc instead, which matches that kernel to 0.2 % of its pixels
    (+0.4 px) at a cost that does not grow with the radius."""
    if radius <= DILATE_MAX_RADIUS:
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    distance = cv2.distanceTransform(1 - mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (distance <= radius + 0.4).view(np.uint8)


def _layout(rgb: np.ndarray, face: BBox) -> FaceLayout:
    fx, fy, fw, fh = face
    h, w = rgb.shape[:2]
    k = FEATURE_FACE_WIDTH_PX / fw
    crop = rgb[fy : fy + fh, fx : fx + fw]
    crop = cv2.resize(crop, (FEATURE_FACE_WIDTH_PX, max(1, round(fh * k))),
                      interpolation=cv2.INTER_AREA)
    crop = _gray_u8(crop)
    plain = crop
    crop = cv2.equalizeHist(crop)
    cw, ch = crop.shape[1], crop.shape[0]

    def to_photo(box: tuple[float, float, float, float]) -> BBox:
        bx, by, bw, bh = box
        photo_box = (round(fx + bx / k), round(fy + by / k), round(bw / k), round(bh / k))
        return _clip_box(photo_box, h, w)

    # Eyes: cascades (plain and equalised crops: glasses defeat one or the other) in the
    # upper part; the face-proportion prior where nothing is found on a side.
    prior_centre = {"left": (0.30 * cw, 0.385 * ch), "right": (0.70 * cw, 0.385 * ch)}
    prior_size = 0.22 * cw
    candidates: list[tuple[float, float, float]] = []
    upper_y = int(0.6 * ch)

    def near_prior(c: tuple[float, float, float], side: str) -> bool:
        pcx, pcy = prior_centre[side]
        return abs(c[0] - pcx) < 0.15 * cw and abs(c[1] - pcy) < 0.12 * ch

    for image, name in (
        (plain, "haarcascade_eye.xml"),
        (crop, "haarcascade_eye.xml"),
        (plain, "haarcascade_eye_tree_eyeglasses.xml"),
    ):
        for ex, ey, ew, eh in _cascade(name).detectMultiScale(
            image[:upper_y], scaleFactor=1.08, minNeighbors=3,
            minSize=(int(0.1 * cw),) * 2, maxSize=(int(0.35 * cw),) * 2,
        ):
            candidates.append((float(ex + ew / 2), float(ey + eh / 2), float(ew)))
        if all(any(near_prior(c, side) for c in candidates) for side in prior_centre):
            break
    eyes_px = []
    brows_px = []
    found = 0
    for side in ("left", "right"):
        pcx, pcy = prior_centre[side]
        same_side = [c for c in candidates if near_prior(c, side)]
        if same_side:
            cx, cy, size = min(same_side, key=lambda c: (c[0] - pcx) ** 2 + (c[1] - pcy) ** 2)
            found += 1
        else:
            cx, cy, size = pcx, pcy, prior_size
        # The eye opening with its corners and lashes: wider than the cascade's square.
        size = min(size, 0.25 * cw)
        ew = max(1.3 * size, 0.24 * cw)
        eh = max(0.75 * size, 0.13 * ch)
        eyes_px.append(to_photo((cx - ew / 2, cy - eh / 2, ew, eh)))
        # The brow is the darkest band of rows above the eye (or a glasses rim over it).
        bw = 1.15 * ew
        brow_row = _darkest_row(plain, cx - ew / 2, cx + ew / 2, cy - 0.17 * ch, cy - 0.05 * ch)
        if brow_row is None:
            brow_row = cy - 0.1 * ch
        brows_px.append(to_photo((cx - bw / 2, brow_row - 0.045 * ch, bw, 0.09 * ch)))

    # Mouth: the lips are redder than the cheeks above them; else the smile cascade
    # (union with the prior), else the prior.
    prior_mouth = (0.27 * cw, 0.70 * ch, 0.46 * cw, 0.19 * ch)
    mouth = prior_mouth
    mouth_found = False
    lips = _lips_box(rgb, face, k, cw, ch)
    lip_line = _lip_line_row(plain, cw, ch)
    if lips is not None:
        mouth, mouth_found = lips, True
    elif lip_line is not None:
        # Closed thin lips (older faces) are hardly redder than skin, but the line
        # between them is the darkest row under the nose.
        mouth, mouth_found = (0.28 * cw, lip_line - 0.065 * ch, 0.44 * cw, 0.13 * ch), True
    else:
        lower_y = int(0.6 * ch)
        smiles = _cascade("haarcascade_smile.xml").detectMultiScale(
            crop[lower_y:], scaleFactor=1.1, minNeighbors=20,
            minSize=(int(0.25 * cw), int(0.08 * ch)),
        )
        if len(smiles):
            sx, sy, sw, sh = max(smiles, key=lambda s: s[2] * s[3])
            sy += lower_y
            if 0.3 * cw <= sx + sw / 2 <= 0.7 * cw and sw < 0.6 * cw and sh < 0.25 * ch:
                x0, y0 = min(sx, prior_mouth[0]), min(sy, prior_mouth[1])
                x1 = max(sx + sw, prior_mouth[0] + prior_mouth[2])
                y1 = max(sy + sh, prior_mouth[1] + prior_mouth[3])
                mouth = (x0, y0, x1 - x0, y1 - y0)
                mouth_found = True
    nose = (0.33 * cw, 0.56 * ch, 0.34 * cw, 0.18 * ch)
    return FaceLayout(
        face=face,
        eyes=tuple(eyes_px),
        brows=tuple(brows_px),
        mouth=to_photo(mouth),
        nose=to_photo(nose),
        eyes_found=found,
        mouth_found=mouth_found,
    )


def _darkest_row(gray: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> float | None:
    """Row of the darkest horizontal band (3-row smoothed) of a box, or None if empty."""
    h, w = gray.shape
    xa, xb = max(0, int(x0)), min(w, int(x1))
    ya, yb = max(0, int(y0)), min(h, int(y1))
    if xb - xa < 3 or yb - ya < 3:
        return None
    profile = gray[ya:yb, xa:xb].astype(np.float32).mean(axis=1)
    profile = np.convolve(profile, np.ones(3, np.float32) / 3.0, mode="same")
    return float(ya + int(np.argmin(profile[1:-1])) + 1)


def _lip_line_row(gray: np.ndarray, cw: int, ch: int) -> float | None:
    """Row (face-crop px) of the dark line between the lips, or None if none stands out."""
    y0, y1 = int(0.68 * ch), int(0.92 * ch)
    x0, x1 = int(0.38 * cw), int(0.62 * cw)
    if y1 - y0 < 5:
        return None
    profile = gray[y0:y1, x0:x1].astype(np.float32).mean(axis=1)
    profile = cv2.GaussianBlur(profile.reshape(-1, 1), (1, 0), 1.5).ravel()
    row = int(np.argmin(profile))
    if profile.max() - profile[row] < 12.0 or row in (0, profile.size - 1):
        return None
    return float(y0 + row)


def _lips_box(rgb: np.ndarray, face: BBox, k: float, cw: int, ch: int):
    """The lips' box in face-crop coordinates (scaled by ``k``), from redness; or None."""
    fx, fy, fw, fh = face
    # The mouth lies between the nose and the chin, inside the cheeks' inner edges: a
    # red cheek spot outside this box must not be taken for (and widen) the lips.
    y0, y1 = fy + int(0.50 * fh), min(rgb.shape[0], fy + int(0.98 * fh))
    x0, x1 = fx + int(0.22 * fw), fx + int(0.78 * fw)
    if y1 - y0 < 8 or x1 - x0 < 8:
        return None
    patch = rgb[y0:y1, x0:x1]
    if patch.dtype == np.uint8:
        patch = patch.astype(np.float32) / 255.0
    patch = cv2.resize(np.ascontiguousarray(patch, dtype=np.float32),
                       (max(8, round((x1 - x0) * k)), max(8, round((y1 - y0) * k))),
                       interpolation=cv2.INTER_AREA)
    a_star = rgb_to_lab(patch)[..., 1]
    ph, pw = a_star.shape
    # Reference: the cheeks/upper-lip band above the mouth.
    band = a_star[: int(0.25 * ph)]
    ref, spread = float(np.median(band)), float(np.median(np.abs(band - np.median(band))))
    red = (a_star > ref + max(6.0, 3.0 * 1.4826 * spread)).astype(np.uint8)
    red[: int(0.3 * ph)] = 0  # the mouth is below the nose
    red = cv2.morphologyEx(red, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, _, stats, centroids = cv2.connectedComponentsWithStats(red, connectivity=8)
    best = None
    for i in range(1, n):
        cx = centroids[i][0] / pw
        area = stats[i, cv2.CC_STAT_AREA]
        width = stats[i, cv2.CC_STAT_WIDTH]
        height = stats[i, cv2.CC_STAT_HEIGHT]
        flat_and_wide = width >= 0.2 * pw and width >= 1.5 * height
        if 0.3 <= cx <= 0.7 and flat_and_wide and area >= 0.01 * ph * pw:
            if best is None or area > stats[best, cv2.CC_STAT_AREA]:
                best = i
    if best is None:
        return None
    bx, by, bw, bh = (int(v) for v in stats[best, :4])
    # Both lips and what is between them (teeth): join red parts near the best one.
    for i in range(1, n):
        ix, iy, iw, ih = (int(v) for v in stats[i, :4])
        if i != best and stats[i, cv2.CC_STAT_AREA] >= 0.003 * ph * pw and iw >= ih:
            overlap = min(bx + bw, ix + iw) - max(bx, ix)
            if overlap >= 0.5 * min(bw, iw) and abs((iy + ih / 2) - (by + bh / 2)) < 0.15 * ph:
                nx0, ny0 = min(bx, ix), min(by, iy)
                bx, by, bw, bh = nx0, ny0, max(bx + bw, ix + iw) - nx0, max(by + bh, iy + ih) - ny0
    if bw > 0.7 * pw or bh > 0.2 * (fh * k):
        return None
    # Back to face-crop coordinates, with a margin for the lip line.
    left = (x0 - fx) * k + bx - 0.12 * bw
    top = (y0 - fy) * k + by - 0.2 * bh
    return (left, top, 1.24 * bw, 1.4 * bh)


def _ellipse(mask: np.ndarray, box: BBox, *, grow: float) -> None:
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return
    centre = (round(x + w / 2), round(y + h / 2))
    axes = (max(1, round(grow * w / 2)), max(1, round(grow * h / 2)))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, thickness=-1)


def _gray_u8(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(as_bytes(image), cv2.COLOR_RGB2GRAY)


def _clip_box(box: BBox, h: int, w: int) -> BBox:
    x, y, bw, bh = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(w, x + bw), min(h, y + bh)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))
