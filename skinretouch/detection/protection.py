"""What detection must never touch: the face's skin area, nostrils, hair, and spots that
fall on a protected feature."""

from __future__ import annotations

import cv2
import numpy as np

from ..kernels.labels import label_boxes, label_windows
from .grid import point_small
from .haar_faces import FaceLayout
from .types import BBox, Spot, bbox_of

__all__ = ["drop_protected", "face_ellipse", "face_region", "hair_features", "nostril_area"]



def drop_protected(labels: np.ndarray, spots: list[Spot], protected: np.ndarray):
    """Cut spots off protected features; drop those mostly on them and cut-off crumbs.

    ``labels`` (int32, labels ``1..len(spots)``) is rewritten in place and returned with the
    renumbered spots. Every step looks only at each spot's box, or at the windows around
    touching spots (:func:`~skinretouch.kernels.labels.label_windows`; a piece of a spot
    lies inside its window): the same result as whole-map passes, which cost 0.6 s and a
    whole-map component map at 100 megapixels.
    """
    if not spots:
        return labels, spots
    n = len(spots) + 1
    boxes = label_boxes(labels, n - 1)
    if boxes is None:
        raise ValueError(f"labels above {n - 1} for {n - 1} spots")
    area = np.zeros(n, np.int64)
    covered = np.zeros(n, np.int64)
    for k in range(1, n):
        y0, x0, y1, x1 = (int(v) for v in boxes[k])
        if y0 < y1:
            own = labels[y0:y1, x0:x1] == k
            area[k] = own.sum()
            covered[k] = (own & protected[y0:y1, x0:x1]).sum()
    keep = np.ones(n, bool)
    keep[0] = False
    keep[1:] = covered[1:] <= 0.7 * np.maximum(area[1:], 1)
    windows = label_windows(boxes, labels.shape)
    for y0, y1, x0, x1 in windows:
        block = labels[y0:y1, x0:x1]
        block[protected[y0:y1, x0:x1] & (block != 0)] = 0
    if covered[1:].any():
        # A feature cutting through a spot can leave a crumb on its far side: keep only
        # the pieces of each spot at least a quarter the size of its largest piece.
        window_of = np.full(n, -1, np.int64)
        for index, (y0, y1, x0, x1) in enumerate(windows):
            for k in range(1, n):
                top, left, bottom, right = boxes[k]
                if top < bottom and y0 <= top and bottom <= y1 and x0 <= left and right <= x1:
                    window_of[k] = index
        for index, (y0, y1, x0, x1) in enumerate(windows):
            block = labels[y0:y1, x0:x1]
            count, pieces, stats, _ = cv2.connectedComponentsWithStats(
                np.ascontiguousarray(block > 0).view(np.uint8), connectivity=8
            )
            piece_label = np.zeros(count, np.int64)
            # Where a piece spans two labels, the last one in raster order names it, as on
            # the whole map. Pieces of another window's spots (cut by this window's edge)
            # are left alone: they are judged whole in their own window.
            piece_label[pieces.ravel()] = block.ravel()
            mine = window_of[piece_label] == index
            mine[0] = False
            piece_area = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
            largest = np.zeros(n, np.int64)
            np.maximum.at(largest, piece_label[mine], piece_area[mine])
            small = mine & (piece_area < 0.25 * largest[piece_label])
            block[small[pieces]] = 0
    present = np.zeros(n, bool)
    owned = []
    for k in range(1, n):
        y0, x0, y1, x1 = (int(v) for v in boxes[k])
        own = labels[y0:y1, x0:x1] == k if y0 < y1 else np.zeros((0, 0), bool)
        present[k] = own.any()
        owned.append(own)
    kept = [s for s in spots if keep[s.label] and present[s.label]]
    lut = np.zeros(n, np.int32)
    for new, spot in enumerate(kept, start=1):
        lut[spot.label] = new
    # Every label's pixels found before any is renumbered: a new number may be an old one.
    for k, own in zip(range(1, n), owned):
        y0, x0, y1, x1 = (int(v) for v in boxes[k])
        if own.any():
            labels[y0:y1, x0:x1][own] = lut[k]
    spots = [Spot(label=i, kind=s.kind, score=s.score) for i, s in enumerate(kept, start=1)]
    return labels, spots


# A landmark face outline enclosing less than this share of its convex hull is a turned head's
# (three-quarter, profile: the far side's points fold in over the near cheek, and the outline
# is a crescent that leaves that cheek out); it is searched as its hull. A frontal or tilted
# face's outline encloses about 0.94 of its hull (the temples), a profile's 0.67-0.78.
FOLDED_OVAL_SHARE = 0.85


def face_region(face: FaceLayout, h: int, w: int) -> BBox:
    fx, fy, fw, fh = face.face
    if face.landmarks is not None:
        # The landmark oval runs from the upper forehead round the jaw; skin joined to it is
        # searched up to ADJACENT_SKIN_REACH face units beyond it (forehead, nose).
        pad = 0.12 * max(fw, fh)
        x0, y0 = max(0, int(fx - pad)), max(0, int(fy - pad))
        x1, y1 = min(w, int(fx + fw + pad)), min(h, int(fy + fh + pad))
        return (x0, y0, x1 - x0, y1 - y0)
    x0 = max(0, int(fx - 0.25 * fw))
    x1 = min(w, int(fx + 1.25 * fw))
    y0 = max(0, int(fy - 0.3 * fh))
    y1 = min(h, int(fy + 1.4 * fh))
    return (x0, y0, x1 - x0, y1 - y0)


def face_ellipse(mask: np.ndarray, face: FaceLayout, roi: BBox, to_small) -> None:
    """The face's skin as an ellipse: cheek to cheek (no ears), brow-top forehead to chin.

    A Haar face box spans about the cheeks' outer edges and, vertically, from the middle
    of the forehead to just above the chin's tip.
    """
    if face.landmarks is not None:
        # The landmark oval, grown a little past the jaw line and the hairline; a turned head's
        # crescent-shaped outline is searched as its convex hull (FOLDED_OVAL_SHARE).
        oval = face.landmarks.oval
        centre = oval.mean(axis=0)
        pts = ((centre + 1.06 * (oval - centre)) - (roi[0], roi[1])).astype(np.float32)
        hull = cv2.convexHull(pts)[:, 0, :]
        if abs(cv2.contourArea(pts)) < FOLDED_OVAL_SHARE * cv2.contourArea(hull):
            pts = hull
        cv2.fillPoly(mask, [np.round(pts * np.float32(to_small)).astype(np.int32)], 1)
        return
    fx, fy, fw, fh = face.face
    cx, cy = point_small(fx + 0.5 * fw, fy + 0.52 * fh, roi, to_small)
    axes = (max(1, round(0.48 * fw * to_small[0])), max(1, round(0.66 * fh * to_small[1])))
    cv2.ellipse(mask, (cx, cy), axes, 0, 0, 360, 1, thickness=-1)


# Without a face, a photo is searched only if it looks like a skin close-up or body shot:


def nostril_area(lightness, face: FaceLayout, roi, to_small, unit):
    """Nostrils: dark blobs in the lower-middle nose area, as one protected area.

    The area is the convex hull of the blobs and, when they all lie on one side, of
    their mirror image (a nostril in light is paler than its twin), so the columella
    between them is covered too; grown by 2.5 face units (their rims).
    """
    sh, sw = lightness.shape
    if face.landmarks is not None:
        mask = np.zeros((sh, sw), np.uint8)
        pts = (face.landmarks.nostrils - (roi[0], roi[1])) * to_small
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
        pad = max(1, round(1.5 * unit))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1,) * 2))
        box = bbox_of(mask > 0)
        return mask.astype(bool), [box] if box[2] > 0 else []
    nx, ny, nw, nh = face.nose
    x0, y0 = point_small(nx, ny, roi, to_small)
    x1, y1 = point_small(nx + nw, ny + nh, roi, to_small)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(sw, x1), min(sh, y1)
    mask = np.zeros((sh, sw), np.uint8)
    boxes: list[BBox] = []
    if x1 - x0 < 4 or y1 - y0 < 4:
        return mask.astype(bool), boxes
    area = lightness[y0:y1, x0:x1]
    dark = (area < np.median(area) - 11.0).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    points = []
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < max(4.0, 2.0 * unit * unit):
            continue
        bx, by, bw, bh = (int(v) for v in stats[k, :4])
        boxes.append((x0 + bx, y0 + by, bw, bh))
        ys, xs = np.nonzero(lab == k)
        points.append(np.stack([xs + x0, ys + y0], axis=1))
    if points:
        pts = np.concatenate(points)
        centre_x = 0.5 * (x0 + x1)
        left, right = (pts[:, 0] < centre_x).any(), (pts[:, 0] >= centre_x).any()
        if not (left and right):
            # One nostril seen (the other in light): its twin is the mirror image.
            mirrored = pts.copy()
            mirrored[:, 0] = np.clip(np.rint(2 * centre_x - pts[:, 0]), 0, sw - 1)
            pts = np.concatenate([pts, mirrored])
        hull = cv2.convexHull(pts.astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
        pad = max(3, round(2.5 * unit))
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1,) * 2))
    return mask.astype(bool), boxes


def hair_features(hair: np.ndarray, unit: float, limit: int = 24) -> list[BBox]:
    """Boxes of the longest hair-strand groups (merged when close), for the report.

    Short pieces (a crease here and there) stay protected but are not listed.
    """
    if not hair.any():
        return []
    gap = max(3, round(3 * unit))
    merged = cv2.dilate(hair.astype(np.uint8), np.ones((gap, gap), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
    extent = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    extent[0] = 0
    order = [k for k in np.argsort(-extent) if extent[k] >= 24.0 * unit][:limit]
    return [tuple(int(v) for v in stats[k, :4]) for k in order]
