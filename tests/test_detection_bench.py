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
    assert run["moles"][0]["radius"] == pytest.approx(math.sqrt(36 / math.pi))
    summary = summarise_planted([{**run, "tone": "dark"}, {**run, "tone": "light"}])
    assert summary["recall"] == pytest.approx(0.5)
    assert summary["recall_per_tone"] == {"light": 0.5, "dark": 0.5}
    assert summary["false_regions_per_spot"] == pytest.approx(0.5)
    assert summary["moles_hit"] == 2 and summary["moles_hit_by_radius"]["3<=r<6"] == "2/2"


# --- the current detector, measured on a small subset -------------------------------------------

# Floors = what the current detector measured on this subset when the bench was written (the old
# Haar + skin-colour detector): planted recall dev 0.72, test 0.24; real-acne inflamed recall dev
# 0.24, test 0.11; eye/brow/lip pixels masked with nothing planted dev 1 (grace_hopper), test 16
# (facexlib_elder). The targets are 0.90, 0.85 and 0 pixels: these floors are measured
# figures, not goals, and the detection work raises them as it improves. The subset's photos
# come from PyPI packages only (matplotlib, facetorch and facexlib sdists), so CI can fetch them.
SUBSET_PHOTOS = ("grace_hopper", "family_boy", "family_girl", "facexlib_elder")  # dev: 2, test: 2
FLOOR_PLANTED_RECALL = {"dev": 0.70, "test": 0.20}
FLOOR_REAL_ACNE_INFLAMED_RECALL = {"dev": 0.20, "test": 0.10}
CEILING_FEATURE_PX = {"dev": 1, "test": 16}


@pytest.mark.skipif(os.environ.get("SKINRETOUCH_SKIP_BENCH_SUBSET") == "1", reason="bench subset disabled")
def test_current_detector_on_a_small_subset_meets_its_floor():
    from skinretouch.benchmark.detection import run_detection_bench
    from skinretouch.benchmark.photoset import load_set_photos

    if len(load_set_photos(SUBSET_PHOTOS)) < len(SUBSET_PHOTOS):
        pytest.skip("bench photos not obtainable (registries unreachable)")
    result = run_detection_bench(photo_names=SUBSET_PHOTOS, sweep=False, real_acne=REAL_ACNE.is_dir(), quick=True)
    for part, section in result["parts"].items():
        planted = section["planted"]
        assert planted["n_spots"] > 0
        assert planted["recall"] >= FLOOR_PLANTED_RECALL[part], (part, planted["recall"])
        assert section["nothing_planted_summary"]["feature_px_total"] <= CEILING_FEATURE_PX[part], section["nothing_planted"]
        if REAL_ACNE.is_dir():
            assert section["real_acne"]["recall_inflamed"] >= FLOOR_REAL_ACNE_INFLAMED_RECALL[part]


def test_an_unreachable_source_is_reported_by_name(tmp_path):
    from skinretouch.benchmark.sources import PhotoSource, SourceUnavailable, fetch_member

    missing = PhotoSource("nowhere", "module", "skinretouch_no_such_package", "none")
    with pytest.raises(SourceUnavailable, match="skinretouch_no_such_package"):
        fetch_member(missing, "photo.jpg", tmp_path)
    empty = PhotoSource("empty", "module", "skinretouch", "none")
    with pytest.raises(SourceUnavailable, match="no_such_photo.jpg"):
        fetch_member(empty, "no_such_photo.jpg", tmp_path)
