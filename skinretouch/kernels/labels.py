"""Connected components of sparse masks, bounding boxes of labels and masks (numba), and the
disc footprint masks are grown and shrunk with."""

from __future__ import annotations

import mmap

import numpy as np

from .ahead_of_time import njit

__all__ = ["disk", "label_boxes", "label_sparse", "label_windows", "lazy_zeros", "mask_box", "mask_pixels", "merged_windows",
           "sparse_copy", "sparse_or", "sparse_put"]

# Below this size zeros come from numpy as usual (a mapping per small array costs more than it saves).
LAZY_MIN_BYTES = 1 << 20


def lazy_zeros(shape, dtype=bool) -> np.ndarray:
    """Zeros that take memory only in the pages written, whatever the allocator holds.

    ``np.zeros`` gets fresh, lazily mapped pages only when malloc maps the block anew; served
    from memory the heap kept (a one-shot process keeps up to 256 MiB, see
    :mod:`skinretouch.startup`), calloc writes every page, and a 24 MP label map costs its whole
    96 MB. A private anonymous mapping is always lazy.
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    if count * dtype.itemsize < LAZY_MIN_BYTES:
        return np.zeros(shape, dtype)
    pages = mmap.mmap(-1, count * dtype.itemsize, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    return np.frombuffer(pages, dtype=dtype, count=count).reshape(shape)


def disk(radius_px: float) -> np.ndarray:
    """Bool disc footprint of radius ``radius_px`` rounded to whole pixels (at least 1)."""
    r = max(1, int(round(radius_px)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r


def sparse_or(target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``target |= mask`` writing only where ``mask`` is set (returns ``target``).

    A whole-photo bool map made by :func:`lazy_zeros` takes memory only in the pages written: an
    ``|=`` writes every page, this leaves those of a sparse ``mask``'s empty parts alone.
    """
    np.copyto(target, True, where=mask)
    return target


def sparse_copy(mask: np.ndarray) -> np.ndarray:
    """A copy of a bool ``mask`` that takes memory only in the pages where it is set."""
    return sparse_or(lazy_zeros(mask.shape, bool), mask)


def sparse_put(target: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``target[...] = values`` for a ``target`` that is all zero, writing only the nonzero
    values (returns ``target``): its pages away from them take no memory."""
    np.copyto(target, values, where=values != 0)
    return target


def label_windows(boxes: np.ndarray, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Windows ``(y0, y1, x0, x1)`` (ends exclusive) holding every label of ``boxes`` (rows as
    :func:`label_boxes` gives them) with a 1-px margin; labels whose grown boxes overlap share
    a window, so two labels that touch (8-neighbours) are always in one window, and a
    background region that labels enclose lies inside the window of its enclosing labels.

    The whole-map passes over a detection's labels (hole filling, pieces cut off by a
    protected feature) find the same things window by window: at 100 megapixels each pass
    over the search area cost a few hundred ms and a few hundred MB of scratch.
    """
    present = [box for box in boxes[1:] if box[0] < box[2]]
    windows = merged_windows(present, 1, *shape)
    return [(y0, y1, x0, x1) for y0, x0, y1, x1 in windows]


def merged_windows(boxes, grow: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Boxes ``(y0, x0, y1, x1)`` grown by ``grow`` px (clipped to ``height`` x ``width``),
    overlapping ones merged until none overlap (a merge can make a window meet another)."""
    windows = [
        [max(0, int(y0) - grow), max(0, int(x0) - grow), min(height, int(y1) + grow), min(width, int(x1) + grow)]
        for y0, x0, y1, x1 in boxes
    ]
    changed = True
    while changed:
        changed = False
        kept: list[list[int]] = []
        for box in windows:
            for other in kept:
                if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                    other[:] = [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])]
                    changed = True
                    break
            else:
                kept.append(box)
        windows = kept
    return [(y0, x0, y1, x1) for y0, x0, y1, x1 in windows]


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


@njit(cache=True, nogil=True)
def mask_box(mask):
    """``(y0, y1, x0, x1)``, inclusive, of the true pixels of a non-empty 2-D bool mask."""
    height, width = mask.shape
    y0, y1, x0, x1 = height, -1, width, -1
    for y in range(height):
        for x in range(width):
            if mask[y, x]:
                y0 = min(y0, y)
                y1 = max(y1, y)
                x0 = min(x0, x)
                x1 = max(x1, x)
    return np.array([y0, y1, x0, x1], np.int64)


def label_sparse(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """8-connected components of a mask whose true pixels are few, numbered as OpenCV does.

    ``cv2.connectedComponents`` labels every pixel of the photo; a blemish mask covers a
    fraction of a percent of it. Here the true pixels are found as row runs, joined into
    components, and written into a zero array whose untouched pages cost nothing.

    Parameters
    ----------
    mask : (H, W) bool ndarray

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 off the mask, ``1..count`` on it: equal to ``cv2.connectedComponents(mask,
        connectivity=8)``, which numbers components by the first 2 x 2 block (from the
        image's origin, in raster order of blocks) they cover; an 8-connected block never
        holds two components.
    count : int
        Number of components.
    boxes : (count + 1, 4) int64 ndarray
        Row ``k`` is component ``k``'s ``(y0, x0, y1, x1)`` (end exclusive); row 0 is zeros.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    labels = np.zeros(mask.shape, np.int32)
    # NumPy finds the rows holding true pixels with SIMD; only those are scanned for runs.
    rows = np.flatnonzero(mask.any(axis=1))
    count, boxes = _label_runs(mask, rows, labels)
    return labels, int(count), boxes


@njit(cache=True, nogil=True)
def _label_runs(mask, rows, labels):
    height, width = mask.shape
    # Row runs of true pixels: (y, x0, x1) with x1 exclusive; counted first, so that the
    # arrays are allocated once (growing them inside the scan made every pixel pay for it).
    n_runs = 0
    for y in rows:
        inside = False
        for x in range(width):
            if mask[y, x] and not inside:
                n_runs += 1
            inside = mask[y, x]
    run_y = np.empty(n_runs, np.int64)
    run_x0 = np.empty(n_runs, np.int64)
    run_x1 = np.empty(n_runs, np.int64)
    r = -1
    for y in rows:
        inside = False
        for x in range(width):
            if mask[y, x]:
                if not inside:
                    r += 1
                    run_y[r] = y
                    run_x0[r] = x
                run_x1[r] = x + 1
            inside = mask[y, x]
    # Union-find over runs: a run joins the runs of the row above that it touches (8-connected).
    parent = np.arange(n_runs)
    above = 0  # first run of the previous row that may still touch
    for r in range(n_runs):
        y = run_y[r]
        while above < r and run_y[above] < y - 1:
            above += 1
        k = above
        while k < r and run_y[k] == y - 1:
            if run_x0[k] <= run_x1[r] and run_x0[r] <= run_x1[k]:
                _union(parent, r, k)
            k += 1
    # Number the components by their first 2 x 2 block, as OpenCV does.
    first_block = np.full(n_runs, np.iinfo(np.int64).max, np.int64)
    blocks_per_row = (width + 1) // 2
    for r in range(n_runs):
        root = _find(parent, r)
        block = (run_y[r] // 2) * blocks_per_row + run_x0[r] // 2
        first_block[root] = min(first_block[root], block)
    roots = np.empty(n_runs, np.int64)
    n_roots = 0
    for r in range(n_runs):
        if parent[r] == r:
            roots[n_roots] = r
            n_roots += 1
    roots = roots[:n_roots]
    order = np.argsort(first_block[roots])
    label_of_root = np.zeros(n_runs, np.int64)
    for rank in range(n_roots):
        label_of_root[roots[order[rank]]] = rank + 1
    boxes = np.zeros((n_roots + 1, 4), np.int64)
    for k in range(1, n_roots + 1):
        boxes[k, 0], boxes[k, 1] = height, width
    for r in range(n_runs):
        label = label_of_root[_find(parent, r)]
        y = run_y[r]
        for x in range(run_x0[r], run_x1[r]):
            labels[y, x] = label
        boxes[label, 0] = min(boxes[label, 0], y)
        boxes[label, 1] = min(boxes[label, 1], run_x0[r])
        boxes[label, 2] = max(boxes[label, 2], y + 1)
        boxes[label, 3] = max(boxes[label, 3], run_x1[r])
    return n_roots, boxes


@njit(cache=True, nogil=True)
def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit(cache=True, nogil=True)
def _union(parent, a, b):
    root_a, root_b = _find(parent, a), _find(parent, b)
    if root_a != root_b:
        parent[max(root_a, root_b)] = min(root_a, root_b)


@njit(cache=True, nogil=True)
def mask_pixels(mask):
    """``(ys, xs)`` int32 of the true pixels of a 2-D bool mask, in raster order."""
    height, width = mask.shape
    count = 0
    for y in range(height):
        for x in range(width):
            if mask[y, x]:
                count += 1
    ys = np.empty(count, np.int32)
    xs = np.empty(count, np.int32)
    k = 0
    for y in range(height):
        for x in range(width):
            if mask[y, x]:
                ys[k] = y
                xs[k] = x
                k += 1
    return ys, xs
