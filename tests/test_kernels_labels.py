"""Connected components of sparse masks: OpenCV's labels and numbering, with label boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from skinretouch.kernels.labels import label_boxes, label_sparse


def _masks():
    rng = np.random.default_rng(3)
    yield np.zeros((7, 9), bool)
    yield np.ones((5, 6), bool)
    diagonal = np.zeros((6, 6), bool)
    diagonal[np.arange(6), np.arange(6)] = True  # 8-connected: one component
    yield diagonal
    for _ in range(60):
        height, width = (int(v) for v in rng.integers(1, 70, 2))
        yield rng.random((height, width)) < rng.random() * 0.5
    spots = np.zeros((300, 400), np.uint8)
    for _ in range(25):
        center = (int(rng.integers(0, 400)), int(rng.integers(0, 300)))
        cv2.circle(spots, center, int(rng.integers(0, 10)), 1, -1)
    yield spots.astype(bool)


@pytest.mark.parametrize("mask", list(_masks()))
def test_labels_count_and_boxes_equal_opencvs(mask):
    labels, count, boxes = label_sparse(mask)
    expected_count, expected = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    assert count == expected_count - 1
    assert labels.dtype == np.int32 and np.array_equal(labels, expected)
    assert np.array_equal(boxes, label_boxes(expected, count) if count else np.zeros((1, 4), np.int64))
