"""Zero-shot anomaly scores for candidate spots, from one photo (the MuSc principle).

MuSc (Li et al., ICLR 2024) scores a patch by its distance to its nearest similar patches in
*other* images: normal patches have many close neighbours, defects few. It needs a batch of
images; a retouching service sees one photo at a time, so here the neighbours are the other
skin pixels *of the same photo* (a face has thousands of skin patches; a blemish is rare among
them), optionally with a small bank of clean-skin descriptors kept from earlier photos.

Patches are described by :func:`skinretouch.kernels.descriptors.skin_descriptors` (multi-scale
colour, texture and line/bump shape, in face units). A candidate's score is how far its most
unusual pixels lie from their ``k`` nearest skin samples, over the same distance for typical
skin samples: about 1 for a piece of ordinary skin (a pore, a bit of wrinkle highlight that
the photo has everywhere), several for a real blemish.  The samples exclude every candidate,
so candidates cannot vouch for each other.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..detection import Detection, Spot
from ..kernels import skin as ks
from ..kernels.descriptors import skin_descriptors
from ..lazy import lazy_module
from ..logs import get_logger

ndi = lazy_module("scipy.ndimage")  # imported when the anomaly filter first runs (issue 17)

__all__ = ["AnomalyDetector", "AnomalyFilteredDetector", "anomaly_map", "anomaly_scores", "filter_by_anomaly"]

log = get_logger(__name__)

WORK_UNIT = 1.5  # at most this many px per face unit while scoring (larger photos are shrunk)
BANK_SIZE = 4000  # skin samples of the photo
NEIGHBOURS = 5
PIXELS_PER_CANDIDATE = 48  # the candidate's most contrasted pixels that are scored
TOP_FRACTION = 0.25  # a candidate's score: the mean of its top quarter of pixel scores
EXCLUDE_UNITS = 2.0  # skin samples keep this far (face units) from every candidate
CONTEXT_UNITS = 24.0  # only skin within this distance (face units) of a candidate is read
SKIN_LIKELIHOOD = 0.3  # skin test when no skin mask is given
MIN_AREA_UNITS = 3.0  # standalone mode: smallest region kept, in face units squared


def anomaly_scores(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    skin: np.ndarray,
    scale: float,
    neighbours: int = NEIGHBOURS,
    clean_bank: np.ndarray | None = None,
    seed: int = 0,
) -> dict[int, float]:
    """Anomaly score of each labelled candidate against the photo's other skin.

    Parameters
    ----------
    image : (H, W, 3) float32 RGB in [0, 1]
    labels : (H, W) int ndarray
        Candidates (0 = none).
    skin : (H, W) bool ndarray
        Skin pixels that may serve as "normal" samples.
    scale : float
        Face scale of the photo (px per face unit, ``Detection.scale``).
    neighbours : int
        ``k`` of the k-nearest-neighbour distance.
    clean_bank : (N, D) float32 ndarray, optional
        Extra clean-skin descriptors (same layout as ``skin_descriptors``), e.g. from earlier
        photos; they join the photo's own samples.
    seed : int
        Sampling seed (the scores are deterministic for a seed).

    Returns
    -------
    dict
        {label: score}; ~1 = ordinary skin, higher = more anomalous. Labels with no pixel
        are absent.
    """
    image = np.asarray(image, dtype=np.float32)
    labels = np.asarray(labels)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if labels.shape != image.shape[:2] or np.asarray(skin).shape != image.shape[:2]:
        raise ValueError("labels and skin must have the image's (H, W)")
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return {}
    factor = min(1.0, WORK_UNIT / scale)
    unit = scale * factor
    skin = np.asarray(skin, bool)
    # Descriptors only around the candidates: each candidate's box plus CONTEXT_UNITS of
    # skin, boxes that touch merged, so a 24-megapixel photo costs what its spots cost.
    cand_rows, cand_ids, pool = [], [], []
    for window in _context_windows(labels, scale):
        img = image[window]
        lab_ids = labels[window].astype(np.int32)
        skin_w = skin[window]
        if factor < 1.0:
            size = (max(8, round(img.shape[1] * factor)), max(8, round(img.shape[0] * factor)))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            lab_ids = cv2.resize(lab_ids, size, interpolation=cv2.INTER_NEAREST)
            skin_w = cv2.resize(skin_w.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        candidates = lab_ids > 0
        feats = skin_descriptors(ks.rgb_to_lab(img), skin_w & ~candidates, unit=unit)
        near = ndi.binary_dilation(candidates, structure=_disk(EXCLUDE_UNITS * unit))
        pool.append(feats[skin_w & ~near])
        cand_rows.append(feats[candidates])
        cand_ids.append(lab_ids[candidates])
    pool = np.concatenate(pool)
    if clean_bank is not None:
        pool = np.concatenate([pool, np.asarray(clean_bank, np.float32)])
    if pool.shape[0] < 4 * neighbours:
        log.debug("anomaly: too little skin to compare with", samples=int(pool.shape[0]))
        return {int(i): float("nan") for i in ids}
    bank = _sample(pool, BANK_SIZE, seed)
    centre = np.median(bank, axis=0)
    spread = 1.4826 * np.median(np.abs(bank - centre), axis=0)
    spread = np.maximum(spread, 0.05 * float(np.median(spread)) + 1e-6)
    bank = (bank - centre) / spread
    probe = _sample(bank, 1000, seed + 1)
    typical = float(np.median(np.sqrt(_kth_nearest_sq(probe, bank, neighbours + 1))))
    typical = max(typical, 1e-6)

    all_rows = np.concatenate(cand_rows)
    all_ids = np.concatenate(cand_ids)
    scores: dict[int, float] = {}
    for label in ids:
        rows = (all_rows[all_ids == label] - centre) / spread
        if rows.shape[0] == 0:
            # Lost when the photo was shrunk: too small to judge, NaN (kept by the filter).
            scores[int(label)] = float("nan")
            continue
        norms = np.linalg.norm(rows, axis=1)
        rows = rows[np.argsort(-norms)[:PIXELS_PER_CANDIDATE]]
        d = np.sqrt(_kth_nearest_sq(rows, bank, neighbours)) / typical
        top = np.sort(d)[::-1][: max(1, int(np.ceil(TOP_FRACTION * d.size)))]
        scores[int(label)] = float(top.mean())
    return scores


def anomaly_map(image: np.ndarray, *, skin: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    """Per-pixel anomaly score over skin (0 off skin): the standalone, zero-shot detector's map.

    Same scale as :func:`anomaly_scores` (~1 = ordinary skin). (H, W) float32.
    """
    image = np.asarray(image, dtype=np.float32)
    skin = np.asarray(skin, bool)
    factor = min(1.0, WORK_UNIT / scale)
    unit = scale * factor
    h, w = skin.shape
    img, skin_w = image, skin
    if factor < 1.0:
        size = (max(8, round(w * factor)), max(8, round(h * factor)))
        img = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        skin_w = cv2.resize(skin.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    feats = skin_descriptors(ks.rgb_to_lab(img), skin_w, unit=unit)
    pool = feats[skin_w]
    out = np.zeros(skin_w.shape, np.float32)
    if pool.shape[0] < 4 * NEIGHBOURS:
        return np.zeros((h, w), np.float32)
    bank = _sample(pool, BANK_SIZE, seed)
    centre = np.median(bank, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(bank - centre), axis=0), 1e-6)
    bank = (bank - centre) / spread
    typical = max(float(np.median(np.sqrt(_kth_nearest_sq(_sample(bank, 1000, seed + 1), bank, NEIGHBOURS + 1)))), 1e-6)
    out[skin_w] = np.sqrt(_kth_nearest_sq((pool - centre) / spread, bank, NEIGHBOURS + 1)) / typical
    if factor < 1.0:
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR) * skin
    return out


def filter_by_anomaly(
    detection: Detection,
    image: np.ndarray,
    *,
    threshold: float,
    skin: np.ndarray | None = None,
) -> Detection:
    """Drop the candidates whose anomaly score is below ``threshold``.

    Parameters
    ----------
    detection : Detection
        Candidates (e.g. from the classical detector).
    image : (H, W, 3) float32 RGB in [0, 1]
    threshold : float
        Minimum score kept (1 = ordinary skin); 0 keeps everything.
    skin : (H, W) bool ndarray, optional
        Normal skin to compare with; by default skin-coloured pixels (generic skin-colour
        model) that are not protected.

    Returns
    -------
    Detection
        A new Detection: the kept spots (scores unchanged), their labels, everything else as
        given. Candidates the score cannot judge (NaN: too little skin around) are kept.
    """
    if not detection.spots or threshold <= 0:
        return detection
    if skin is None:
        skin = _default_skin(image, detection)
    scores = anomaly_scores(image, detection.labels, skin=skin, scale=detection.scale)
    kept = [s for s in detection.spots if not (scores.get(s.label, np.nan) < threshold)]
    dropped = {s.label for s in detection.spots} - {s.label for s in kept}
    labels = detection.labels
    if dropped:
        labels = np.where(np.isin(labels, list(dropped)), 0, labels).astype(labels.dtype)
    log.debug("anomaly filter", kept=len(kept), dropped=len(dropped),
              scores={k: round(v, 2) for k, v in scores.items()})  # fmt: skip
    return Detection(labels=labels, spots=kept, protected_mask=detection.protected_mask,
                     protected=detection.protected, scale=detection.scale, method=detection.method)  # fmt: skip


class AnomalyFilteredDetector:
    """A detector whose candidates pass :func:`filter_by_anomaly` (``detect.anomaly_filter``)."""

    def __init__(self, base, *, threshold: float) -> None:
        self.base = base
        self.threshold = float(threshold)
        self.name = f"{getattr(base, 'name', 'detector')}+anomaly"

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        return filter_by_anomaly(self.base.detect(image, orientation=orientation), image,
                                 threshold=self.threshold)


class AnomalyDetector:
    """Standalone zero-shot mode (``detect.anomaly_detector``): no example and no rule per
    kind, just the pixels of skin unlike the rest of this photo's skin.

    The base detector supplies the face, the protected features and the scale; its spots
    are not used. A region starts at pixels scoring ``threshold`` or more and grows over
    connected pixels scoring at least half of it, so the mask follows the defect's outline.
    """

    name = "anomaly"

    def __init__(self, base, *, threshold: float) -> None:
        self.base = base
        self.threshold = float(threshold)

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        image = np.ascontiguousarray(image, dtype=np.float32)
        # Faces, protected features and scale from the shared analysis; no classical spots.
        found = self.base.analyse(image, orientation=orientation).protection_only()
        lab = ks.rgb_to_lab(image)
        skin = ks.skin_likelihood(lab, ks.generic_skin_model(), lightness_weight=0.3) >= SKIN_LIKELIHOOD
        skin &= ~found.protected_mask
        score = anomaly_map(image, skin=skin, scale=found.scale)
        grown, count = ndi.label(score >= 0.5 * self.threshold, structure=np.ones((3, 3), bool))
        peaks = ndi.maximum(score, grown, index=np.arange(1, count + 1)) if count else np.zeros(0)
        min_area = max(2, int(round(MIN_AREA_UNITS * found.scale**2)))
        areas = np.bincount(grown.ravel(), minlength=count + 1)[1:]
        keep = np.flatnonzero((peaks >= self.threshold) & (areas >= min_area)) + 1
        labels = np.zeros(grown.shape, np.int32)
        spots = []
        for new_label, old_label in enumerate(keep, start=1):
            labels[grown == old_label] = new_label
            spots.append(Spot(label=new_label, kind="anomaly", score=float(peaks[old_label - 1])))
        return Detection(labels=labels, spots=spots, protected_mask=found.protected_mask,
                         protected=found.protected, scale=found.scale, method=found.method)  # fmt: skip


def _default_skin(image: np.ndarray, detection: Detection) -> np.ndarray:
    window = _context_window(detection.labels > 0, detection.scale)
    skin = np.zeros(detection.labels.shape, bool)
    lab = ks.rgb_to_lab(np.ascontiguousarray(image[window], dtype=np.float32))
    likely = ks.skin_likelihood(lab, ks.generic_skin_model(), lightness_weight=0.3) >= SKIN_LIKELIHOOD
    skin[window] = likely
    return skin & ~detection.protected_mask


def _context_windows(labels: np.ndarray, scale: float) -> list[tuple[slice, slice]]:
    """Boxes of the candidates grown by CONTEXT_UNITS, overlapping ones merged."""
    h, w = labels.shape
    m = int(CONTEXT_UNITS * scale)
    union = np.zeros((h, w), bool)
    for sl in ndi.find_objects(labels.astype(np.int32)):
        if sl is not None:
            union[max(0, sl[0].start - m) : sl[0].stop + m, max(0, sl[1].start - m) : sl[1].stop + m] = True
    merged, _ = ndi.label(union)
    return [sl for sl in ndi.find_objects(merged) if sl is not None]


def _context_window(mask: np.ndarray, scale: float) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if ys.size == 0:
        return slice(0, h), slice(0, w)
    m = int(CONTEXT_UNITS * scale)
    return slice(max(0, ys.min() - m), min(h, ys.max() + m + 1)), slice(max(0, xs.min() - m), min(w, xs.max() + m + 1))


def _sample(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    if rows.shape[0] <= n:
        return rows
    pick = np.random.default_rng(seed).choice(rows.shape[0], size=n, replace=False)
    return rows[np.sort(pick)]


def _kth_nearest_sq(points: np.ndarray, bank: np.ndarray, k: int, chunk: int = 4096) -> np.ndarray:
    out = np.empty(points.shape[0], np.float32)
    bb = (bank * bank).sum(1)
    k = max(1, min(k, bank.shape[0]))
    for start in range(0, points.shape[0], chunk):
        p = points[start : start + chunk]
        d = (p * p).sum(1)[:, None] - 2.0 * p @ bank.T + bb[None, :]
        out[start : start + chunk] = np.maximum(np.partition(d, k - 1, axis=1)[:, k - 1], 0.0)
    return out


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r
