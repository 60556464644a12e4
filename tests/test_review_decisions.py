"""Apply, keep and undo on the files, without a browser: what the review page's buttons do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import jsonschema
import pytest
from PIL import Image

from review_helpers import SPOTS, disc, make_processed_photo
from skinretouch.config import Config
from skinretouch.files.report import REPORT_JSON_SCHEMA
from skinretouch.pipeline import Retoucher
from skinretouch.review.catalog import FolderGuard, load_photo, scan_photos
from skinretouch.review.decisions import Decision, Reviewer, ReviewError, Stroke, rasterize_strokes


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB")).astype(np.int16)


def _region_at(report: dict, x: int, y: int) -> int:
    for region in report["regions"]:
        bx, by, bw, bh = region["bbox"]
        if bx <= x < bx + bw and by <= y < by + bh:
            return region["id"]
    raise AssertionError(f"no region at {x},{y}")


def test_apply_keep_brush_then_undo(tmp_path: Path) -> None:
    photo_path = make_processed_photo(tmp_path / "photos")
    guard = FolderGuard([tmp_path / "photos"])
    (photo,) = scan_photos(guard)
    assert photo.summary()["spots"] == 3 and photo.summary()["needs_review"]
    original_sha = hashlib.sha256(photo_path.read_bytes()).hexdigest()
    automatic = {name: path.read_bytes() for name, path in
                 (("image", photo.image_path), ("mask", photo.mask_path), ("report", photo.report_path))}  # fmt: skip
    (x0, y0, r0), (x1, y1, r1), (x2, y2, _) = SPOTS
    rejected, kept = _region_at(photo.report, x0, y0), _region_at(photo.report, x1, y1)
    brushed = (200, 290, 5)
    decision = Decision(rejected=[rejected], kept=[kept], strokes=[Stroke(radius=brushed[2], points=[brushed[:2]])])

    reviewer = Reviewer(lambda: Retoucher(Config()))
    try:
        report = reviewer.apply(photo, decision)
    finally:
        reviewer.close()

    original, after = _pixels(photo_path), _pixels(photo.image_path)
    height, width = original.shape[:2]
    for x, y, r in ((x0, y0, r0 + 2), (x1, y1, r1 + 2)):  # rejected and kept: the original's pixels
        spot = disc(height, width, x, y, r)
        assert np.array_equal(after[spot], original[spot])
    assert np.abs(after[disc(height, width, x2, y2, 4)] - original[disc(height, width, x2, y2, 4)]).mean() > 10
    brush = disc(height, width, brushed[0], brushed[1], brushed[2] - 1)
    assert (after[brush] != original[brush]).any(axis=1).mean() > 0.5
    untouched = ~rasterize_strokes(decision.strokes, height, width)
    for x, y, r in SPOTS:
        untouched &= ~disc(height, width, x, y, r + 2)
    assert np.array_equal(after[untouched], original[untouched])  # nothing else moves

    on_disk = json.loads(photo.report_path.read_text())
    assert on_disk == report and on_disk["schema"] == 1 and on_disk["status"] == "ok"
    jsonschema.validate(on_disk, REPORT_JSON_SCHEMA)  # still a schema-1 report, the review added
    review = on_disk["review"]
    assert review["rejected"] == [rejected] and review["kept"] == [kept] and review["status"] == "applied"
    assert sorted(review["accepted"] + review["rejected"] + review["kept"]) == sorted(r["id"] for r in photo.automatic["regions"])
    assert review["added_mask"]["pixels"] == int(rasterize_strokes(decision.strokes, height, width).sum()) > 0
    assert review["reviewed_at"].endswith("Z")
    assert hashlib.sha256(photo_path.read_bytes()).hexdigest() == original_sha
    assert on_disk["input"]["sha256"] == original_sha

    reopened = load_photo(guard, photo.key)  # the page still shows the automatic regions
    assert [r["id"] for r in reopened.automatic["regions"]] == [r["id"] for r in photo.automatic["regions"]]
    assert reopened.summary()["review"] == "applied" and not reopened.summary()["needs_review"]

    Reviewer(lambda: None).undo(reopened)
    assert photo.image_path.read_bytes() == automatic["image"]
    assert photo.mask_path.read_bytes() == automatic["mask"]
    assert json.loads(photo.report_path.read_text()) == json.loads(automatic["report"])
    assert not reopened.state_dir.exists()


def test_bad_decisions_refused() -> None:
    for body in ([], {"rejected": "1"}, {"rejected": [True]}, {"strokes": [{"points": [[1, 2]]}]},
                 {"strokes": [{"radius": 1e9, "points": [[1, 2]]}]}, {"strokes": [{"radius": 3, "points": []}]}):  # fmt: skip
        with pytest.raises(ReviewError):
            Decision.from_json(body)
    decision = Decision.from_json({"rejected": [2, 1, 1], "kept": [1], "strokes": [{"radius": 3, "points": [[1, 2]]}]})
    assert decision.rejected == [2] and decision.kept == [1] and len(decision.strokes) == 1


def test_accepted_mask_drops_only_the_excluded_regions_pieces() -> None:
    from skinretouch.review.decisions import accepted_mask

    mask = np.zeros((40, 60), bool)
    mask[5:15, 5:15] = True  # region 0
    mask[5:15, 16:26] = True  # region 1, its box touching region 0's
    mask[30:35, 40:50] = True  # region 2
    regions = [{"id": 0, "bbox": [5, 5, 10, 10]}, {"id": 1, "bbox": [15, 4, 12, 12]}, {"id": 2, "bbox": [40, 30, 10, 5]}]
    kept = accepted_mask(mask, regions, {1})
    expected = mask.copy()
    expected[5:15, 16:26] = False
    assert np.array_equal(kept, expected)
    assert np.array_equal(accepted_mask(mask, regions, set()), mask)
    assert not accepted_mask(mask, regions, {0, 1, 2}).any()
