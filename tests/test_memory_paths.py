"""Whole-photo maps rewritten in place or written only where set, to save memory (issue 17,
peak RSS): each such path must give exactly what the copying one gave."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from skinretouch.detection.protection import drop_protected
from skinretouch.detection.types import Spot


def whole_map_drop_protected(labels, spots, protected):
    """The version before blocks: whole-map temporaries, a new labels array."""
    if not spots:
        return labels, spots
    n = len(spots) + 1
    area = np.bincount(labels.ravel(), minlength=n)
    covered = np.bincount(labels[protected].ravel(), minlength=n)
    keep = np.ones(n, bool)
    keep[0] = False
    keep[1:] = covered[1:] <= 0.7 * np.maximum(area[1:], 1)
    labels = np.where(protected & (labels > 0), 0, labels)
    if covered[1:].any():
        count, pieces, stats, _ = cv2.connectedComponentsWithStats((labels > 0).astype(np.uint8), connectivity=8)
        piece_label = np.zeros(count, np.int64)
        piece_label[pieces.ravel()] = labels.ravel()
        piece_area = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
        largest = np.zeros(n, np.int64)
        np.maximum.at(largest, piece_label[1:], piece_area[1:])
        small = piece_area < 0.25 * largest[piece_label]
        small[0] = False
        labels = np.where(small[pieces], 0, labels)
    lut = np.zeros(n, np.int32)
    present = np.bincount(labels.ravel(), minlength=n) > 0
    kept = [s for s in spots if keep[s.label] and present[s.label]]
    for new, spot in enumerate(kept, start=1):
        lut[spot.label] = new
    labels = lut[labels]
    spots = [Spot(label=i, kind=s.kind, score=s.score) for i, s in enumerate(kept, start=1)]
    return labels, spots


def random_case(seed: int, height: int = 300, width: int = 220):
    """Touching and overlapping discs of many labels, cut by protected bands and blobs."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.int32)
    count = int(rng.integers(1, 60))
    for label in range(1, count + 1):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(labels, centre, int(rng.integers(1, 14)), label, thickness=-1)
    protected = np.zeros((height, width), np.uint8)
    for _ in range(int(rng.integers(0, 8))):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.line(protected, (x0, y0), (int(rng.integers(0, width)), int(rng.integers(0, height))), 1,
                 int(rng.integers(1, 6)))  # fmt: skip
        cv2.circle(protected, (x0, y0), int(rng.integers(1, 20)), 1, thickness=-1)
    spots = [Spot(label=k, kind="papule", score=float(k)) for k in range(1, count + 1)]
    return labels, spots, protected.astype(bool)


def test_windows_give_what_the_whole_map_gave():
    """drop_protected looks only at spot boxes and the windows around touching spots."""
    cut = 0
    for seed in range(200):
        labels, spots, protected = random_case(seed)
        expected_labels, expected_spots = whole_map_drop_protected(labels.copy(), spots, protected)
        # A view into a larger map, as the detector passes its search area.
        full = np.zeros((labels.shape[0] + 10, labels.shape[1] + 12), np.int32)
        full[4:-6, 5:-7] = labels
        got_labels, got_spots = drop_protected(full[4:-6, 5:-7], spots, protected)
        assert got_labels.dtype == np.int32
        np.testing.assert_array_equal(got_labels, expected_labels)
        np.testing.assert_array_equal(full[4:-6, 5:-7], expected_labels)  # rewritten in place
        assert not full[:4].any() and not full[-6:].any() and not full[:, :5].any() and not full[:, -7:].any()
        assert got_spots == expected_spots
        cut += len(spots) - len(got_spots)
    assert cut > 0  # the cases do drop spots


def test_fill_label_holes_in_place_gives_the_copy():
    """In place, holes are found window by window around the labels (label_windows): the
    same holes as on the whole map, filled with the same labels."""
    from skinretouch.kernels import detect as kd

    rng = np.random.default_rng(0)
    filled = 0
    for seed in range(120):
        labels, _, protected = random_case(seed)
        labels[protected & (labels > 0)] = 0  # punch holes
        for _ in range(int(rng.integers(0, 12))):  # rings (some of two labels, some at the edge)
            centre = (int(rng.integers(-5, labels.shape[1] + 5)), int(rng.integers(-5, labels.shape[0] + 5)))
            radius = int(rng.integers(2, 30))
            cv2.circle(labels, centre, radius, int(rng.integers(1, 60)), thickness=int(rng.integers(1, 4)))
            if rng.random() < 0.5:
                cv2.ellipse(labels, centre, (radius, radius), 0, 0, 180, int(rng.integers(1, 60)), 2)
        max_hole_px = int(rng.integers(1, 400))
        expected = kd.fill_label_holes(labels, max_hole_px=max_hole_px)
        own = labels.copy()
        got = kd.fill_label_holes(own, max_hole_px=max_hole_px, in_place=True)
        assert got is own
        np.testing.assert_array_equal(got, expected)
        filled += int((expected != labels).any())
    assert filled > 60  # the cases do have holes to fill
    with pytest.raises(ValueError):
        kd.fill_label_holes(labels[:, ::2], max_hole_px=60, in_place=True)


def test_sparse_copy_and_or_give_the_dense_results():
    from skinretouch.kernels.labels import sparse_copy, sparse_or

    rng = np.random.default_rng(3)
    mask = rng.random((64, 80)) < 0.05
    other = rng.random((64, 80)) < 0.05
    copied = sparse_copy(mask)
    assert copied.dtype == bool and copied is not mask
    np.testing.assert_array_equal(copied, mask)
    target = copied.copy()
    assert sparse_or(target[5:40, 7:60], other[5:40, 7:60]) is not None  # a view is written through
    expected = mask.copy()
    expected[5:40, 7:60] |= other[5:40, 7:60]
    np.testing.assert_array_equal(target, expected)


def test_sparse_put_writes_the_nonzero_values():
    from skinretouch.kernels.labels import sparse_put

    labels, _, _ = random_case(5)
    target = np.zeros((labels.shape[0] + 4, labels.shape[1]), np.int32)
    sparse_put(target[2:-2], labels)
    np.testing.assert_array_equal(target[2:-2], labels)
    assert not target[:2].any() and not target[-2:].any()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident size read from /proc")
def test_a_sparse_copy_takes_memory_only_where_set():
    """Whatever the heap holds: in the whole suite, after in-process ``process`` runs had tuned
    malloc to keep freed memory, an ``np.zeros`` copy was served from it and grew 38 MB."""
    from skinretouch.kernels.labels import sparse_copy

    def resident_mb() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    mask = np.zeros((6000, 8000), bool)  # 46 MB, all but a few pages never written
    mask[3000, 100:200] = True
    before = resident_mb()
    copied = sparse_copy(mask)
    grown = resident_mb() - before
    assert copied[3000, 150] and copied.sum() == 100
    assert grown < 4.0  # a dense copy would add 46 MB
