"""The classical detector: measured on the bench photos with planted spots, and its parts.

Figures asserted here were measured on these photos and seeds (see the module constants);
the margins leave room for small numeric differences between platforms, not for a
detector that got worse.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("NUMBA_CACHE_DIR", "/tmp/numba_cache")

from skinretouch.benchmark import metrics, planting  # noqa: E402
from skinretouch.benchmark import photos as bench_photo_sets  # noqa: E402
from skinretouch.config import DetectConfig  # noqa: E402
from skinretouch.detection import Detection  # noqa: E402
from skinretouch.engines.classical_detector import ClassicalDetector  # noqa: E402
from skinretouch.engines.overlay import debug_overlay  # noqa: E402
from skinretouch.kernels import detect as kd  # noqa: E402
from skinretouch.kernels import skin as ks  # noqa: E402

# Pipeline default (MaskConfig.dilation_px): the mask the bench scores is dilated by this.
PIPELINE_DILATION_PX = 3

# Facial features drawn by hand, (x0, y0, x1, y1) in image pixels, read off enlarged crops:
# eye openings with lashes, brows (Grace Hopper's lie behind her glasses' top rim), the
# nostrils and the mouth (lips and teeth).
FEATURES = {
    "astronaut": {
        "eye": ((188, 94, 214, 106), (234, 96, 259, 108)),
        "brow": ((186, 86, 214, 92), (232, 88, 260, 94)),
        "nostril": ((213, 124, 222, 131), (229, 124, 238, 131)),
        "lips": ((203, 139, 244, 154),),
    },
    "grace_hopper": {
        "eye": ((200, 183, 232, 198), (290, 180, 325, 195)),
        "brow": ((190, 170, 235, 178), (285, 167, 330, 175)),
        "nostril": ((250, 241, 262, 249), (276, 240, 288, 248)),
        "lips": ((230, 270, 300, 290),),
    },
}
# The real marks on the dermapred macro, (y, x, radius): two moles (photos.py).
DERMAPRED_MOLES = ((693, 616, 14), (371, 631, 12))


@pytest.fixture(scope="module")
def detector() -> ClassicalDetector:
    return ClassicalDetector(DetectConfig())


@pytest.fixture(scope="module")
def photos(bench_photos):
    return {name: bench_photos[name] for name in ("astronaut", "grace_hopper")}


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    import cv2

    size = 2 * radius + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def _measure(detector, photo, seeds):
    found = spots = false_raw = false_dilated = moles_hit = 0
    per_kind: dict[str, list[int]] = {}
    for seed in seeds:
        image, planted = planting.plant_spots(photo, seed=seed)
        detection = detector.detect(image)
        raw = metrics.detection_metrics(detection.mask, planted)
        dilated = metrics.detection_metrics(_dilate(detection.mask, PIPELINE_DILATION_PX), planted)
        found += raw["found"]
        spots += raw["n_spots"]
        false_raw += raw["false_regions"]
        false_dilated += dilated["false_regions"]
        moles_hit += dilated["moles_hit"]
        for spot in planted:
            if not spot.keep:
                hit = detection.mask[spot.core].mean() >= 0.5
                per_kind.setdefault(spot.kind, [0, 0])
                per_kind[spot.kind][0] += int(hit)
                per_kind[spot.kind][1] += 1
    return {
        "recall": found / spots,
        "false_raw": false_raw / spots,
        "false_dilated": false_dilated / spots,
        "moles_hit": moles_hit,
        "spots": spots,
        "per_kind": {k: v[0] / v[1] for k, v in per_kind.items()},
    }


# --- measured on the bench photos ---------------------------------------------------------


def test_bench_faces_recall_false_regions_and_moles(detector, photos):
    """Astronaut and Grace Hopper together, 3 seeds each (about 27 planted spots)."""
    totals = {"found": 0.0, "spots": 0, "false_raw": 0.0, "false_dilated": 0.0, "moles": 0}
    for name in ("astronaut", "grace_hopper"):
        m = _measure(detector, photos[name], seeds=(0, 1, 2))
        totals["found"] += m["recall"] * m["spots"]
        totals["spots"] += m["spots"]
        totals["false_raw"] += m["false_raw"] * m["spots"]
        totals["false_dilated"] += m["false_dilated"] * m["spots"]
        totals["moles"] += m["moles_hit"]
    recall = totals["found"] / totals["spots"]
    false_dilated = totals["false_dilated"] / totals["spots"]
    # Measured: recall 0.81 (22 of 27), 0.30 false regions per planted spot in the mask as the
    # pipeline dilates it (8 of 27, most on Grace Hopper's aged skin: folds, wrinkles and faint
    # red blotches), no mole. Before the noise-relative rules (dim papule, faint blackhead,
    # dark_rel, every papule 4 local a* SDs): 0.81 and 0.22 (bound 0.25); the faint rules add
    # some blotches (they raised real-acne inflamed recall 0.50 -> 0.67 on the dev half). Before
    # the issue-13 detector and the shared Lab/blur kernels: 0.85 and 0.11 (bound 0.2).
    assert recall >= 0.8
    assert false_dilated <= 0.32
    assert totals["moles"] == 0


def test_bench_macro_recall_false_regions_and_moles(detector):
    """The dermapred macro (real pores, hairs, two real moles), when it can be fetched."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipped" warning when offline; we skip below
        loaded = bench_photo_sets.load_bench_photos(names=["dermapred"])
    if not loaded:
        pytest.skip("dermapred photo not obtainable offline")
    photo = loaded[0]
    m = _measure(detector, photo, seeds=(0,))
    # Measured: recall 1.0 (16 spots, every kind), 3 false regions (0.19 per spot), no mole hit.
    # All three are the macro's own skin: a faint red dot (the dim-papule rule) and two faint brown
    # marks; the one at (125, 525) is taken since the faint-brown-mark rule (wave 12; its crop
    # looked at: a light brown smudge, a real mark the planted truth does not know).
    assert m["recall"] >= 0.9
    assert m["false_dilated"] <= 0.19
    assert m["moles_hit"] == 0
    assert all(r >= 0.75 for r in m["per_kind"].values()), m["per_kind"]
    # The photo's own two moles are left alone, and listed as protected moles; no spot is
    # found on the clean photo.
    clean = detector.detect(photo.rgb.astype(np.float32) / 255.0)
    assert clean.method == "skin_colour"
    yy, xx = np.mgrid[: clean.mask.shape[0], : clean.mask.shape[1]]
    for y, x, radius in DERMAPRED_MOLES:
        distance2 = (yy - y) ** 2 + (xx - x) ** 2
        assert not clean.mask[distance2 <= radius**2].any()
        assert clean.protected_mask[distance2 <= 5**2].mean() >= 0.9
    assert sum(f.kind == "mole" for f in clean.protected) >= 2
    # Measured 3: a faint papule and two faint brown marks of its own skin, one of them the mark
    # at (125, 525).
    assert len(clean.spots) <= 3
    assert any(s.kind == "dark_spot" and clean.labels[125, 525] == s.label for s in clean.spots)


# --- protection and fallback ----------------------------------------------------------------


def _feature_mask(shape, boxes):
    mask = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_facial_features_are_protected_and_never_spots(detector, photos, name):
    photo = photos[name]
    shape = photo.rgb.shape[:2]
    clean = detector.detect(photo.rgb.astype(np.float32) / 255.0)
    assert clean.method == "face"
    assert {"eye", "brow", "lips", "nostril"} <= {f.kind for f in clean.protected}
    everything = np.zeros(shape, bool)
    for kind, boxes in FEATURES[name].items():
        feature = _feature_mask(shape, boxes)
        everything |= feature
        # Measured: eyes, brows, lips >= 0.93 covered; nostrils >= 0.81 (a nostril in
        # light is paler than the threshold; the boxes are drawn a little loose).
        assert clean.protected_mask[feature].mean() >= (0.75 if kind == "nostril" else 0.9), kind
    # No spot touches a feature, on the photo as it is or with spots planted next to them.
    assert not clean.mask[everything].any()
    for seed in (0, 1, 2):
        image, _ = planting.plant_spots(photo, seed=seed)
        assert not detector.detect(image).mask[everything].any()


def test_a_photo_stored_sideways_gets_the_spots_it_gets_upright(detector, photos):
    """A phone stores a portrait sideways with EXIF Orientation 6: the same pixels, turned.
    The spots found, read back upright, are those of the upright photo, and none touches an
    eye, brow or lip. Measured on 27 planted spots: 22 found either way, dilated masks
    overlapping with IoU 0.76 (resampling on the turned grid moves edges by a pixel); with
    the orientation ignored: 21 found, IoU 0.49, 106 px inside the astronaut's eye boxes."""
    from skinretouch.detection import faces

    if not faces.landmarker_available():
        pytest.skip("face_landmarker.task not installed (run make)")
    found_upright = found_sideways = spots = 0
    overlap = union = 0
    for name in ("astronaut", "grace_hopper"):
        shape = photos[name].rgb.shape[:2]
        features = _feature_mask(shape, [b for k in ("eye", "brow", "lips") for b in FEATURES[name][k]])
        for seed in (0, 1, 2):
            image, planted = planting.plant_spots(photos[name], seed=seed)
            upright = detector.detect(image).mask
            stored = np.ascontiguousarray(faces.upright_view(image, 8))  # its upright view is Orientation 6's
            sideways = detector.detect(stored, orientation=6).mask
            assert sideways.shape == stored.shape[:2]
            read_upright = faces.upright_view(sideways, 6)
            assert not read_upright[features].any(), f"{name} seed {seed}: a spot on a feature"
            found_upright += metrics.detection_metrics(upright, planted)["found"]
            found_sideways += metrics.detection_metrics(read_upright, planted)["found"]
            spots += len([s for s in planted if not s.keep])
            a, b = _dilate(upright, PIPELINE_DILATION_PX), _dilate(read_upright, PIPELINE_DILATION_PX)
            overlap += int((a & b).sum())
            union += int((a | b).sum())
    assert spots >= 20
    assert found_sideways >= found_upright - 1
    assert overlap / union >= 0.68


def test_skin_colour_fallback_without_a_face(detector, photos):
    """A close-up of Grace Hopper's forehead has no face in it: skin comes from colour."""
    rows, cols = slice(120, 180), slice(166, 350)
    found = total = 0
    for seed in (0, 2, 3):
        image, planted = planting.plant_spots(photos["grace_hopper"], seed=seed)
        close_up = np.ascontiguousarray(image[rows, cols])
        detection = detector.detect(close_up)
        assert detection.method == "skin_colour"
        assert detection.labels.shape == close_up.shape[:2]
        assert not any(f.kind in ("eye", "lips", "brow") for f in detection.protected)
        for spot in planted:
            core = spot.core[rows, cols]
            if not spot.keep and core.sum() >= 0.8 * spot.core.sum():
                total += 1
                found += detection.mask[core].mean() >= 0.5
    # Measured: 8 of the 8 spots inside the close-up found.
    assert total >= 6
    assert found / total >= 0.8


@pytest.mark.parametrize("name", ["coffee", "chelsea"])
def test_no_spots_on_photos_without_skin(detector, name):
    """No face and no skin close-up (a cup of coffee, a tabby cat's fur): nothing found."""
    from skimage import data

    image = getattr(data, name)()[..., :3].astype(np.float32) / 255.0
    detection = detector.detect(image)
    assert detection.method == "skin_colour"
    assert detection.spots == [] and not detection.mask.any()


def test_detection_is_deterministic_and_well_formed(detector, photos):
    image, _ = planting.plant_spots(photos["grace_hopper"], seed=0)
    first = detector.detect(image)
    second = ClassicalDetector(DetectConfig()).detect(image.copy())
    assert isinstance(first, Detection)
    assert np.array_equal(first.labels, second.labels)
    assert first.spots == second.spots
    assert np.array_equal(first.protected_mask, second.protected_mask)
    assert first.labels.dtype == np.int32 and first.labels.shape == image.shape[:2]
    assert first.protected_mask.dtype == bool
    assert [s.label for s in first.spots] == list(range(1, len(first.spots) + 1))
    assert set(np.unique(first.labels)) == {0, *range(1, len(first.spots) + 1)}
    assert not (first.mask & first.protected_mask).any()
    assert all(0.0 <= s.score <= 1.0 for s in first.spots)
    assert first.scale >= 1.0


def test_kind_switches_and_sensitivity(photos):
    image, _ = planting.plant_spots(photos["grace_hopper"], seed=1)
    everything = ClassicalDetector(DetectConfig()).detect(image)
    kinds = {s.kind for s in everything.spots}
    assert "papule" in kinds or "pustule" in kinds
    no_red = ClassicalDetector(DetectConfig(papule=False, pustule=False)).detect(image)
    assert {s.kind for s in no_red.spots} <= {"dark_spot", "blackhead"}
    timid = ClassicalDetector(DetectConfig(sensitivity=0.0)).detect(image)
    eager = ClassicalDetector(DetectConfig(sensitivity=1.0)).detect(image)
    assert len(timid.spots) <= len(everything.spots) <= len(eager.spots)
    assert timid.mask.sum() < eager.mask.sum()


def test_debug_overlay_draws_spots_and_features(detector, photos):
    image, _ = planting.plant_spots(photos["astronaut"], seed=0)
    detection = detector.detect(image)
    overlay = debug_overlay(image, detection)
    assert overlay.dtype == np.uint8 and overlay.shape == image.shape
    plain = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
    changed = np.any(overlay != plain, axis=-1)
    assert changed[detection.protected_mask].mean() > 0.5
    for spot in detection.spots:
        near = _dilate(detection.labels == spot.label, 2)
        assert changed[near].any()


# --- kernels ----------------------------------------------------------------------------------


def _blob(shape, centre, radius, depth):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    return (depth * np.exp(-d2 / (2.0 * radius**2))).astype(np.float32)


def test_flood_labels_splits_at_deep_saddles_and_merges_texture_bumps():
    shape = (40, 60)
    two = _blob(shape, (20, 15), 3, 5.0) + _blob(shape, (20, 32), 3, 2.0)
    labels, count = kd.flood_labels(two, high=1.0, low=0.3, relative=0.3, merge=0.7)
    assert count == 2
    assert labels[20, 15] != labels[20, 32] and labels[20, 15] > 0 and labels[20, 32] > 0
    # One flat-topped spot with two tiny bumps on it is one region.
    plateau = np.minimum(_blob(shape, (20, 30), 6, 6.0), 3.0)
    plateau[18, 27] += 0.3
    plateau[22, 33] += 0.2
    labels, count = kd.flood_labels(plateau, high=1.0, low=0.3, relative=0.3, merge=0.7)
    assert count == 1
    # A region never spreads below its own floor: a strong spot keeps a tight outline.
    strong = _blob(shape, (20, 30), 2, 10.0) + 0.5
    labels, count = kd.flood_labels(strong, high=1.0, low=0.3, relative=0.3)
    assert count == 1 and labels.sum() < 60
    # Seeds only where allowed to seed.
    labels, count = kd.flood_labels(two, high=1.0, low=0.3, relative=0.3,
                                    seedable=np.zeros(shape, bool))
    assert count == 0


def test_normalized_blur_ignores_excluded_pixels():
    plane = np.full((50, 50), 10.0, np.float32)
    plane[20:30, 20:30] = 100.0  # a spot
    weights = np.ones_like(plane)
    weights[18:32, 18:32] = 0.0
    background = kd.normalized_blur(plane, weights, 6.0)
    assert abs(background[25, 25] - 10.0) < 0.5
    plain = kd.normalized_blur(plane, np.ones_like(plane), 6.0)
    assert plain[25, 25] > 30.0


def test_fill_label_holes_fills_enclosed_only():
    labels = np.zeros((20, 20), np.int32)
    labels[5:12, 5:12] = 3
    labels[7:10, 7:10] = 0  # enclosed hole
    labels[0:4, 14:20] = 4
    labels[0:2, 16:18] = 0  # touches the border: not a hole
    filled = kd.fill_label_holes(labels, max_hole_px=20)
    assert (filled[7:10, 7:10] == 3).all()
    assert (filled[0:2, 16:18] == 0).all()


def test_skin_enclosed_by_spots_goes_to_the_nearest_spot_up_to_its_limits():
    labels = np.zeros((40, 60), np.int32)
    # Two spots, 2 px apart, ringing a 6 x 6 patch of pale skin (a crust between lesions).
    labels[10:24, 10:14] = 1
    labels[10:13, 14:24] = 1
    labels[21:24, 14:24] = 1
    labels[10:24, 26:30] = 2
    labels[10:13, 24:26] = 0
    labels[30:34, 40:44] = 3  # a spot on its own: the skin around it is not enclosed
    taken = kd.take_enclosed_skin(labels, gap_px=2, relative=1.0, max_hole_px=500)
    assert (taken[14:20, 15:23] > 0).all()  # the crust belongs to the spots now
    assert taken[16, 15] == 1 and taken[16, 27] == 2  # ...each pixel to the nearest one
    assert (taken[labels > 0] == labels[labels > 0]).all()  # spots keep their pixels
    assert (taken[30:34, 40:44] == 3).all() and (taken[28:36, 38:46] > 0).sum() == 16
    assert (taken[:8] == 0).all()  # the background outside is left alone
    # A crust larger than the cap (a quarter of a cheek) or than the spots around it stays.
    assert (kd.take_enclosed_skin(labels, 2, 1.0, max_hole_px=20)[16, 18] == 0)
    assert (kd.take_enclosed_skin(labels, 2, 0.05, max_hole_px=500)[16, 18] == 0)


def test_strand_map_finds_lines_not_blobs_or_edges():
    yy, xx = np.mgrid[:64, :64]
    lightness = np.full((64, 64), 70.0, np.float32)
    lightness[:, 20] = 50.0  # a dark strand one pixel wide
    lightness -= _blob((64, 64), (32, 44), 6, 30.0)  # a dark spot
    lightness[:, 58:] -= 20.0  # the border of a shadow: darker on one side only
    strands = ks.strand_map(lightness, sigmas=(1.0,), min_depth=2.0)
    assert strands[10:54, 20].min() > 0
    assert strands[20:44, 32:56].max() == 0
    assert strands[:, 54:].max() == 0


def test_skin_colour_model_fits_and_scores():
    rng = np.random.default_rng(0)
    skin = np.stack([rng.normal(65, 4, 2000), rng.normal(14, 2, 2000), rng.normal(17, 2, 2000)],
                    axis=-1).astype(np.float32).reshape(40, 50, 3)
    model = ks.fit_skin_colour(skin, np.ones((40, 50), np.float32))
    assert model is not None
    assert np.allclose(model.mean, [65, 14, 17], atol=1.0)
    probe = np.array([[[65, 14, 17], [40, -20, -30]]], np.float32)
    likelihood = ks.skin_likelihood(probe, model)
    assert likelihood[0, 0] > 0.9 and likelihood[0, 1] < 1e-3


def test_the_coarse_look_adds_only_inflamed_spots_on_free_unprotected_skin():
    """A faceless photo's second, coarser look (``_with_coarse_spots``): its papules and pustules
    that the first look's spots cover at most ``COARSE_MAX_TAKEN`` of are added where they are
    free, cut off the first look's protected pixels; a coarse spot mostly covered by a first-look
    spot, a dark kind, or one mostly on protected pixels is not."""
    from skinretouch.detection.classical import COARSE_MAX_TAKEN, _with_coarse_spots
    from skinretouch.detection.types import Spot

    def detection(boxes_kinds, protected=None):
        labels = np.zeros((40, 40), np.int32)
        spots = []
        for label, ((y0, x0, y1, x1), kind) in enumerate(boxes_kinds, start=1):
            labels[y0:y1, x0:x1] = label
            spots.append(Spot(label=label, kind=kind, score=0.5))
        mask = np.zeros((40, 40), bool) if protected is None else protected
        return Detection(labels=labels, spots=spots, protected_mask=mask, protected=[], scale=1.0,
                         method="skin_colour")

    protected = np.zeros((40, 40), bool)
    protected[30:40, 0:10] = True  # a mole the first look kept
    protected[0:10, 30:32] = True  # a hair strand across a coarse papule
    # The first look: a papule, and a small piece (a head, a pore) of a large papule.
    fine = detection([((0, 0, 4, 4), "papule"), ((21, 21, 23, 23), "papule")], protected)
    assert 9 / 16 > COARSE_MAX_TAKEN >= 4 / 64
    coarse = detection([
        ((1, 1, 5, 5), "papule"),  # 9 of its 16 px are the first look's papule: not added
        ((10, 10, 16, 16), "pustule"),  # free: added
        ((20, 0, 26, 6), "dark_spot"),  # not an inflamed kind
        ((31, 1, 39, 9), "papule"),  # on the mole
        ((0, 28, 6, 34), "papule"),  # free but crossed by the hair strand: added, cut
        ((18, 18, 26, 26), "papule"),  # the large papule: its free part added
    ])
    merged = _with_coarse_spots(fine, coarse)
    assert [(s.label, s.kind) for s in merged.spots] == [
        (1, "papule"), (2, "papule"), (3, "pustule"), (4, "papule"), (5, "papule")]
    assert (merged.labels[10:16, 10:16] == 3).all()
    assert int((merged.labels == 4).sum()) == 36 - 12 and not (merged.labels[0:6, 30:32] > 0).any()
    assert int((merged.labels == 5).sum()) == 64 - 4 and (merged.labels[21:23, 21:23] == 2).all()
    assert not merged.labels[20:26, 0:6].any() and not merged.labels[31:39, 1:9].any()
    assert int((merged.labels == 1).sum()) == 16 and merged.label_boxes is None


def test_the_coarse_look_replaces_a_hair_strand_across_its_spot_as_one_look_does():
    """A strand the first look kept (it saw no spot there) that crosses a spot the coarse look
    adds goes with the spot, and is no longer protected: cut out, a crease the strand map took
    for a hair stayed in the photo as a line drawn through the repair (real acne 21, a close-up).
    A mole the first look kept stays cut off, and so does a strand's part beyond the spot."""
    from skinretouch.detection.classical import ENCLOSED_GAP, _with_coarse_spots
    from skinretouch.detection.types import Spot

    def detection(boxes_kinds, protected):
        labels = np.zeros((40, 40), np.int32)
        spots = []
        for label, ((y0, x0, y1, x1), kind) in enumerate(boxes_kinds, start=1):
            labels[y0:y1, x0:x1] = label
            spots.append(Spot(label=label, kind=kind, score=0.5))
        return Detection(labels=labels, spots=spots, protected_mask=protected, protected=[], scale=1.0,
                         method="skin_colour")

    strands = np.zeros((40, 40), bool)
    strands[8:9, 2:30] = True  # a strand from well outside into the middle of the coarse papule
    mole = np.zeros((40, 40), bool)
    mole[14:17, 14:17] = True  # a small mole inside the coarse papule
    fine = detection([], strands | mole)
    coarse = detection([((4, 12, 20, 36), "papule")], np.zeros((40, 40), bool))
    merged = _with_coarse_spots(fine, coarse, strands.copy())
    gap = max(1, round(ENCLOSED_GAP * coarse.scale))
    assert [(s.label, s.kind) for s in merged.spots] == [(1, "papule")]
    assert (merged.labels[8, 12:30] == 1).all()  # the strand over the papule: replaced with it
    assert not merged.protected_mask[8, 12:30].any()
    assert merged.protected_mask[8, 2 : 12 - gap].all() and not merged.labels[8, 2:12].any()  # beyond it: kept
    assert merged.protected_mask[14:17, 14:17].all() and not merged.labels[14:17, 14:17].any()  # the mole: kept
    # Without the strands (the first look's protected pixels alone), the strand is cut out as before.
    fine = detection([], strands | mole)
    cut = _with_coarse_spots(fine, coarse)
    assert not cut.labels[8, 12:30].any() and cut.protected_mask[8, 12:30].all()


def test_despeckle_takes_the_softer_impulses_only_in_a_photo_with_impulse_noise():
    """Salt-and-pepper photos (an augmentation of the real-acne set): once the hard impulses
    say the photo has impulse noise, the softer ones JPEG left (a dark-brown dot) go too; a clean
    photo keeps its soft dots (they may be pores or blackheads)."""
    from skinretouch.detection.classical import SPECKLE_JUMP, SPECKLE_JUMP_NOISY, _despeckle

    rng = np.random.default_rng(0)
    skin = np.full((64, 64, 3), (0.8, 0.6, 0.5), np.float32)
    soft = rng.random((64, 64)) < 0.01
    jump = 0.5 * (SPECKLE_JUMP + SPECKLE_JUMP_NOISY)
    clean = skin.copy()
    clean[soft] -= jump  # soft dark dots only
    assert np.array_equal(_despeckle(clean), clean)
    noisy = clean.copy()
    noisy[rng.random((64, 64)) < 0.01] = 0.0  # hard pepper
    out = _despeckle(noisy)
    assert np.abs(out - skin).max() < 1e-6
