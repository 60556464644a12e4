"""Face parsing: one OpenCV, landmark outlines on real faces (upright, stored sideways with an
EXIF orientation, tilted), and no detected spot inside an eye, brow or lip outline."""

from __future__ import annotations

import importlib.metadata
import os

import cv2
import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from skinretouch.config import DetectConfig  # noqa: E402
from skinretouch.detection import faces as fp  # noqa: E402
from skinretouch.detection.classical import ClassicalDetector  # noqa: E402

from test_detector import FEATURES  # noqa: E402  (hand-drawn feature boxes)

bench_photos = pytest.importorskip("skinretouch.benchmark.photos")


def test_exactly_one_opencv_distribution_owns_cv2():
    owners = set()
    for dist in importlib.metadata.distributions():
        files = dist.files or ()
        if any(str(f).replace("\\", "/") == "cv2/__init__.py" for f in files):
            owners.add(dist.metadata["Name"])
    assert len(owners) == 1, f"several distributions install cv2/: {sorted(owners)}"
    # the one mediapipe needs, and it still ships the Haar cascades (the fallback)
    assert owners == {"opencv-contrib-python"}
    assert os.path.isfile(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_points_map_back_to_the_same_stored_pixel(orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.random((7, 11, 3)).astype(np.float32)
    upright = fp.upright_view(stored, orientation)
    uh, uw = upright.shape[:2]
    rows, cols = np.mgrid[0:uh, 0:uw]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1).astype(np.float32)
    back = fp.to_stored_points(centres, orientation, stored.shape[:2])
    xs, ys = np.floor(back[:, 0]).astype(int), np.floor(back[:, 1]).astype(int)
    np.testing.assert_array_equal(stored[ys, xs], upright[rows.ravel(), cols.ravel()])


needs_model = pytest.mark.skipif(not fp.landmarker_available(), reason="face_landmarker.task not installed (run make)")


@pytest.fixture(scope="module")
def photos():
    loaded = bench_photos.load_bench_photos(names=["astronaut", "grace_hopper"])
    if len(loaded) < 2:
        pytest.skip("bench photos unavailable")
    return {p.name: (p.rgb.astype(np.float32) / 255.0) for p in loaded}


def _centre(box):
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float32)


def _inside(poly, point) -> bool:
    return cv2.pointPolygonTest(poly.astype(np.float32), (float(point[0]), float(point[1])), False) >= 0


@needs_model
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_landmark_outlines_hold_the_hand_drawn_features(photos, name):
    faces = fp.find_landmark_faces(photos[name])
    assert len(faces) == 1
    marks = faces[0]
    for kind, polys in (("eye", marks.eyes), ("brow", marks.brows), ("lips", (marks.lips,))):
        for box in FEATURES[name][kind]:
            assert any(_inside(p, _centre(box)) for p in polys), f"{name}: {kind} {box} outside its outline"
    for box in FEATURES[name]["nostril"]:
        assert _inside(marks.nostrils, _centre(box))


@needs_model
@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_a_photo_stored_sideways_is_parsed_upright_and_mapped_back(photos, orientation):
    upright = photos["astronaut"]
    inverse = {6: 8, 8: 6, 3: 3}[orientation]  # stored = upright turned back
    stored = np.ascontiguousarray(fp.upright_view(upright, inverse))
    (reference,) = fp.find_landmark_faces(upright)
    (found,) = fp.find_landmark_faces(stored, orientation=orientation)
    # each stored landmark, viewed upright, lands where the upright run put it
    seen = fp.to_stored_points(found.points, inverse, upright.shape[:2])
    err = np.linalg.norm(seen - reference.points, axis=1)
    assert np.median(err) < 2.0 and err.max() < 8.0


@needs_model
def test_a_tilted_face_gets_tilted_outlines(photos):
    image = photos["grace_hopper"]
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 25.0, 1.0)
    tilted = cv2.warpAffine(image, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    (face,) = fp.find_landmark_faces(tilted)
    for kind, polys in (("eye", face.eyes), ("brow", face.brows), ("lips", (face.lips,))):
        for box in FEATURES["grace_hopper"][kind]:
            moved = turn @ np.array([*_centre(box), 1.0])
            assert any(_inside(p, moved) for p in polys), f"tilted: {kind} {box} outside its outline"


@needs_model
def test_no_spot_pixel_inside_an_eye_brow_or_lip_outline(photos):
    detector = ClassicalDetector(DetectConfig(sensitivity=1.0))
    image = photos["astronaut"]
    h, w = image.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), -20.0, 1.0)
    cases = {name: (img, 1) for name, img in photos.items()}
    cases["tilted"] = (cv2.warpAffine(image, turn, (w, h), borderMode=cv2.BORDER_REFLECT), 1)
    cases["exif6"] = (np.ascontiguousarray(fp.upright_view(image, 8)), 6)
    for name, (img, orientation) in cases.items():
        detection = detector.detect(img, orientation=orientation)
        (face,) = fp.find_landmark_faces(img, orientation=orientation)
        outlines = np.zeros(img.shape[:2], np.uint8)
        for poly in (*face.eyes, *face.brows, face.lips):
            cv2.fillPoly(outlines, [np.round(poly).astype(np.int32)], 1)
        assert detection.method == "face", name
        assert not (detection.mask & outlines.astype(bool)).any(), f"{name}: spot pixels on a feature"
        assert (detection.protected_mask >= outlines.astype(bool)).all(), f"{name}: feature not protected"


def _side_by_side(*images: np.ndarray, height: int = 512) -> np.ndarray:
    scaled = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height), interpolation=cv2.INTER_AREA)
              for im in images]
    return np.ascontiguousarray(np.concatenate(scaled, axis=1))


def _filled(shape, polys) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for poly in polys:
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    return mask.astype(bool)


@needs_model
def test_every_face_of_a_two_face_photo_is_protected_and_searched(photos):
    image = _side_by_side(photos["astronaut"], photos["grace_hopper"])
    analysis = ClassicalDetector(DetectConfig()).analyse(image)
    faces = [f.landmarks for f in analysis.faces]
    assert len(faces) == 2 and all(m is not None for m in faces)
    centres = sorted(float(m.points[:, 0].mean()) for m in faces)
    assert centres[0] < image.shape[1] / 2 < centres[1], "both faces, one in each half"
    for marks in faces:
        features = _filled(image.shape[:2], (*marks.eyes, *marks.brows, marks.lips))
        assert analysis.protected_mask[features].all(), "a face's eyes, brows or lips left unprotected"
        # the face's cheeks and forehead, on the working grid, are searched for spots
        skin = _filled(analysis.allowed_small.shape,
                       [(p - analysis.roi[:2]) * analysis.to_small for p in marks.cheeks])
        assert analysis.allowed_small[skin].mean() >= 0.9, "a face's skin is not searched"


@needs_model
def test_an_upside_down_face_with_no_tag_is_found_on_the_turned_photo(photos):
    image = photos["grace_hopper"]
    h, w = image.shape[:2]
    turned = np.ascontiguousarray(image[::-1, ::-1])
    assert not fp.find_landmark_faces(turned), "the upright search alone must miss it for this test"
    (face,) = fp.find_faces(turned)
    marks = face.landmarks
    for kind, polys in (("eye", marks.eyes), ("brow", marks.brows), ("lips", (marks.lips,))):
        for box in FEATURES["grace_hopper"][kind]:
            moved = np.array([w, h], np.float32) - _centre(box)
            assert any(_inside(p, moved) for p in polys), f"upside down: {kind} {box} outside its outline"
    detection = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(turned)
    outlines = _filled((h, w), (*marks.eyes, *marks.brows, marks.lips))
    assert detection.method == "face"
    assert not (detection.mask & outlines).any(), "spot pixels on a feature of the upside-down face"



@needs_model
def test_a_face_lying_on_its_side_with_no_tag_guards_its_features_without_narrowing_the_search():
    """A portrait turned a quarter with no EXIF tag: the upright and 180-degree searches miss
    it; read a quarter turned, its eyes, brows and lips are protected, but the search stays the
    colour-only search of the whole photo (narrowed to the face, real acne lost lesions)."""
    from skinretouch.benchmark.photoset import load_set_photos

    (kim,) = load_set_photos(["clm_kim"]) or pytest.skip("bench photo unavailable")
    image = kim.photo.rgb.astype(np.float32) / 255.0
    (upright,) = fp.find_landmark_faces(image)
    h, w = image.shape[:2]
    sideways = np.ascontiguousarray(np.rot90(image, 1))  # (x, y) -> (y, w - x)
    assert not fp.find_landmark_faces(sideways) and not fp.find_landmark_faces(sideways, upside_down=True)
    (face,) = fp.find_faces(sideways)
    assert face.guard_only

    def turned(poly):
        return np.stack([poly[:, 1], w - poly[:, 0]], axis=1)

    features = _filled(sideways.shape[:2], [turned(p) for p in (*upright.eyes, *upright.brows, upright.lips)])
    detection = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(sideways)
    assert detection.method == "skin_colour"
    assert detection.protected_mask[features].mean() > 0.95
    assert not (detection.mask & features).any(), "spot pixels on a feature of the sideways face"


@needs_model
def test_a_face_cut_by_the_photos_edges_is_found_inside_a_border_and_guards_its_features(photos):
    """A close-up cut through the forehead, the chin and one eye (as acne close-ups and collage
    panels are): the landmarker misses it as it is, and finds it inside a grey border. Its
    eyes, brows and lips are then protected; the search stays the colour search of the whole
    close-up (acne runs past a cut face's outline)."""
    x0, y0, x1, y1 = 216, 172, 354, 314
    crop = np.ascontiguousarray(photos["grace_hopper"][y0:y1, x0:x1])
    assert not fp.find_landmark_faces(crop), "the plain search must miss it for this test"
    (face,) = fp.find_faces(crop)
    assert face.guard_only
    marks = face.landmarks
    checked = 0
    for kind, polys in (("eye", marks.eyes), ("lips", (marks.lips,)), ("nostril", (marks.nostrils,))):
        for box in FEATURES["grace_hopper"][kind]:
            if box[0] >= x0 and box[1] >= y0 and box[2] <= x1 and box[3] <= y1:
                centre = _centre(box) - np.array([x0, y0], np.float32)
                assert any(_inside(p, centre) for p in polys), f"cut face: {kind} {box} outside its outline"
                checked += 1
    assert checked >= 3
    detection = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(crop)
    outlines = _filled(crop.shape[:2], (*marks.eyes, *marks.brows, marks.lips))
    assert detection.method == "skin_colour"
    assert detection.protected_mask[outlines].mean() > 0.95
    assert not (detection.mask & outlines).any(), "spot pixels on a feature of the cut face"


@needs_model
def test_a_large_headshot_cut_through_an_eye_gets_its_features_placed_from_a_bordered_look(photos):
    """The same cut face enlarged x8 (a tight headshot at full resolution): the landmarker finds
    it as it is, but from the part it sees places the eyes a feature's height off, and part of
    the true eyes went unprotected. A face with a tenth of its landmarks outside the photo is
    placed from the look inside a grey border: its features hold the full photo's outlines."""
    x0, y0, x1, y1 = 216, 172, 354, 314
    factor = 8
    crop = cv2.resize(photos["grace_hopper"][y0:y1, x0:x1], None, fx=factor, fy=factor,
                      interpolation=cv2.INTER_CUBIC)
    (plain,) = fp.find_landmark_faces(crop)
    h, w = crop.shape[:2]
    outside = (plain.points[:, 0] < 0) | (plain.points[:, 1] < 0) | (plain.points[:, 0] > w) | (plain.points[:, 1] > h)
    assert outside.mean() >= 0.1, "the plain look must see a cut face for this test"
    (whole,) = fp.find_landmark_faces(photos["grace_hopper"])

    def in_crop(poly):
        return (poly - np.array([x0, y0], np.float32)) * factor

    (face,) = fp.find_faces(crop)
    assert not face.guard_only
    for mine, truth in zip((*face.landmarks.eyes, face.landmarks.lips), (*whole.eyes, whole.lips)):
        assert np.linalg.norm(mine.mean(axis=0) - in_crop(truth).mean(axis=0)) < 6 * factor
    features = _filled(crop.shape[:2], [in_crop(p) for p in (*whole.eyes, whole.lips)])
    detection = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(np.ascontiguousarray(crop))
    assert detection.protected_mask[features].mean() > 0.99
    assert not (detection.mask & features).any(), "spot pixels on the eyes or lips of the cut face"


@needs_model
def test_the_detection_benchs_cut_close_up_of_a_dark_skinned_portrait_keeps_its_features():
    """The bench's cut close-up of nba_brown (through one eye, brows and chin cut), enlarged x3
    as a tight headshot: retouched as a user's photo is, no mask pixel falls in its drawn eye,
    brow or lip outlines (794 did before cut faces were placed from a bordered look)."""
    from skinretouch.benchmark.detection import cut_close_up_box
    from skinretouch.benchmark.photoset import load_set_photos
    from skinretouch.config import Config
    from skinretouch.pipeline import Retoucher

    (photo,) = load_set_photos(["nba_brown"]) or pytest.skip("bench photo unavailable")
    x0, y0, x1, y1 = cut_close_up_box(photo)
    size = (3 * (x1 - x0), 3 * (y1 - y0))
    crop = cv2.resize(photo.photo.rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_CUBIC)
    features = cv2.resize(photo.feature_mask()[y0:y1, x0:x1].astype(np.uint8), size,
                          interpolation=cv2.INTER_NEAREST).astype(bool)
    assert features.sum() > 1000
    result = Retoucher(Config()).retouch(crop.astype(np.float32) / 255.0)
    assert not (np.asarray(result.applied_mask, bool) & features).any()


@needs_model
def test_a_skin_close_up_read_sideways_gets_no_face_whose_eyes_are_skin():
    """Read a quarter turned, a close-up of skin can give the landmarker a face; one whose
    "eyes" hold nothing dark is refused (it would protect acne as eyes)."""
    (macro,) = bench_photos.load_bench_photos(names=["dermapred"]) or pytest.skip("macro unavailable")
    image = macro.rgb.astype(np.float32) / 255.0
    for turned in (image, np.ascontiguousarray(np.rot90(image, 1))):
        assert not [f for f in fp.find_faces(turned) if f.guard_only]


def test_a_turned_heads_crescent_outline_is_searched_as_its_hull():
    """On a profile the landmark oval's far side folds in over the near cheek: filled as drawn it
    is a crescent that leaves that cheek out, so it is searched as its convex hull. An ordinary
    outline (slightly concave at the temples) is filled as drawn."""
    from types import SimpleNamespace

    from skinretouch.detection.protection import face_ellipse

    def searched(outline):
        face = SimpleNamespace(landmarks=SimpleNamespace(oval=np.asarray(outline, np.float32)))
        mask = np.zeros((140, 140), np.uint8)
        # Unit growth about the centre is 1.06: points given relative to a centre at (50, 50).
        face_ellipse(mask, face, (-20, -20, 140, 140), (1.0, 1.0))
        return mask

    # A square whose left side is pushed in to its middle: 0.7 of its hull.
    crescent = searched([(0, 0), (100, 0), (100, 100), (0, 100), (60, 50)])
    assert crescent[20 + 50, 20 + 30]  # the near cheek inside the fold
    assert not crescent[5, 5] and not crescent[135, 135]
    # Pushed in a little (0.95 of its hull): filled as drawn.
    temples = searched([(0, 0), (100, 0), (100, 100), (0, 100), (10, 50)])
    assert temples[20 + 50, 20 + 30]
    assert not temples[20 + 50, 20 + 3]


@needs_model
def test_a_portrait_is_searched_in_one_call_and_a_group_shots_small_faces_still_in_tiles(monkeypatch):
    """Tiles find the small faces of group shots; a portrait whose face the whole-photo call
    already found large (grace_hopper enlarged to 2048 px) is not tiled. faceapi_s4 (a group
    shot whose largest face is 0.11 of its side) still gets its tiles and their two faces."""
    from skinretouch.benchmark.photoset import load_set_photos

    calls = []
    landmarks_in = fp._landmarks_in

    def counted(*args, **kwargs):
        calls.append(args[2])
        return landmarks_in(*args, **kwargs)

    monkeypatch.setattr(fp, "_landmarks_in", counted)
    (grace,) = bench_photos.load_bench_photos(names=["grace_hopper"]) or pytest.skip("bench photo unavailable")
    portrait = cv2.resize(grace.rgb.astype(np.float32) / 255.0, (2048, 2400), interpolation=cv2.INTER_CUBIC)
    (face,) = fp.find_landmark_faces(portrait)
    assert len(calls) == 1
    assert face.width >= fp.TILE_SKIP_FACE_SHARE * 2400

    (group,) = load_set_photos(["faceapi_s4"]) or pytest.skip("bench photo unavailable")
    image = group.photo.rgb.astype(np.float32) / 255.0
    calls.clear()
    found = fp.find_landmark_faces(image)
    assert len(calls) == 5  # the whole photo and four tiles
    assert len(found) == 4 and len(fp.find_landmark_faces(image, tiled=False)) == 2
