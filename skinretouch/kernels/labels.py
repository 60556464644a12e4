"""Bounding boxes of labelled pixels in one pass (numba)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["label_boxes"]


def label_boxes(labels: np.ndarray, largest: int) -> np.ndarray | None:
    """Box of each label ``0..largest``, indexed by label.

    Parameters
    ----------
    labels : (H, W) int ndarray
        0 for background, ``1..largest`` for labelled pixels.
    largest : int
        The highest label expected.

    Returns
    -------
    (largest + 1, 4) int64 ndarray or None
        Row ``k`` is ``(y0, x0, y1, x1)`` (end exclusive) of label ``k``; a label that does
        not occur (and row 0) has ``y0 >= y1``. ``None`` when a label above ``largest`` occurs.
    """
    boxes = np.empty((largest + 1, 4), np.int64)
    if not _fill_label_boxes(np.ascontiguousarray(labels, dtype=np.int32), boxes):
        return None
    boxes[0] = (0, 0, 0, 0)
    return boxes


@njit(cache=True, nogil=True)
def _fill_label_boxes(labels, boxes):
    height, width = labels.shape
    largest = boxes.shape[0] - 1
    for i in range(boxes.shape[0]):
        boxes[i, 0] = height
        boxes[i, 1] = width
        boxes[i, 2] = -1
        boxes[i, 3] = -1
    for y in range(height):
        for x in range(width):
            label = labels[y, x]
            if label <= 0:
                continue
            if label > largest:
                return False
            boxes[label, 0] = min(boxes[label, 0], y)
            boxes[label, 1] = min(boxes[label, 1], x)
            boxes[label, 2] = max(boxes[label, 2], y + 1)
            boxes[label, 3] = max(boxes[label, 3], x + 1)
    return True
