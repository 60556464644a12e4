"""Reference mode: segment a defect kind shown by 1-3 annotated examples, with no training.

The idea (after INSID3-style one-shot segmentation, with MuSc's "defects have few similar
neighbours"): describe every skin pixel in a feature space where "the same kind of defect"
points the same way, take prototypes of the defect from the reference masks, and keep target
regions that point like the example *and* are rare in the target photo's own skin.

Steps for one target photo:

1. The base detector (:class:`ClassicalDetector`) finds the face, scale, searchable skin,
   dark valleys (hair, folds) and protected features, on a working grid of at most ~1.5 px
   per face unit.
2. Features on that grid from the backbone: by default the numba descriptors of
   :mod:`skinretouch.kernels.descriptors` in fixed units (CPU, no weights); a ViT plug-in
   (:mod:`.backbone`) may replace them (then whitened by the clean skin's robust spread).
3. Pixel score = cosine to the nearest of up to 8 defect prototypes (k-means of the mask's
   pixels) x rareness: the projection on that prototype's direction over the level only
   0.5 % of this photo's skin reaches (and at least half the example's own).
4. Regions grow by hysteresis from seeds (score >= 0.7, grown >= 0.5) and are judged whole:
   size and elongation like an example region's (face units, so the example may come from a
   photo of another size), mean feature pointing like the example's and at least 35 % as
   strong, a ring of searchable skin without dark valleys (not the lit edge of a fold or the
   edge of the skin), no dark crease running beside it (the lit edge of a wrinkle comes with
   the wrinkle's dark valley next to it; a scar does not) and, where the photo offers >= 30
   candidates, a robust z >= 6 of that strength among them.
5. Kept regions spread over connected pixels scoring >= 0.3 within 3 face units (the faint
   rest of the same line: a region judged on its confident pixels covers only part of a
   scar). Masks are pixel-accurate on the working grid and redrawn from the interpolated
   score at full resolution; protected pixels are removed, and pieces left apart from a
   kept region's confident pixels are dropped.

Measured on the bench (scars, one example from another photo; ``skinretouch.benchmark.reference``,
seeds 0-3): recall 0.86 with 0.09 false regions per scar. The weak case is heavily wrinkled
skin (grace_hopper, recall 0.75), where pale fold edges look like scars and some planted scars
come out paler but less red than the example.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..config import DetectConfig
from ..detection import Detection, Spot
from ..errors import MaskError, SkinRetouchError
from ..imageio.masks import read_mask
from ..kernels import skin as ks
from ..kernels.descriptors import DESCRIPTOR_NAMES, skin_descriptors
from ..lazy import lazy_module
from ..logs import get_logger

ndi = lazy_module("scipy.ndimage")  # imported when reference mode first runs (issue 17)

__all__ = [
    "MAX_REFERENCES",
    "DescriptorBackbone",
    "FeatureBackbone",
    "ReferenceDetector",
    "ReferenceError",
    "load_references",
]

log = get_logger(__name__)

MAX_REFERENCES = 3
SKIN_SAMPLE = 4000  # clean-skin pixels sampled per photo
DEFECT_PROTOTYPES = 8
# Unit of each descriptor family: about the spread of clean skin in an ordinary photo (Lab
# units, or the descriptor's own); colour and texture get larger units (count less) because
# they transfer less well between photos (gamut clipping on saturated skin, grain): a pale
# line on ruddy skin may even come out less red than the skin around it.
FEATURE_UNITS = {"dL": 4.0, "da": 6.0, "db": 6.0, "texture": 1.0, "ridge": 2.0, "blob": 0.6, "edge": 1.5}
RARE_QUANTILE = 0.995  # a defect pixel projects farther than this share of the photo's skin
RARE_MARGIN = 1.0  # ... times this
EXAMPLE_FRACTION = 0.5  # ... and at least this share of the example's own projection
SEED_PROBABILITY = 0.7
GROW_PROBABILITY = 0.5
EXTEND_PROBABILITY = 0.3  # a kept region then spreads over pixels this likely ...
EXTEND_UNITS = 3.0  # ... up to this far (face units): the faint rest of a scar line
REGION_LIKENESS = 0.7  # cosine between a region's mean feature and an example region's
REGION_STRENGTH = 0.35  # projection on the example's direction over the example's own length
REGION_RARE_Z = 6.0  # robust z of that projection among the photo's candidate regions ...
REGION_RARE_MIN_COUNT = 30  # ... when there are at least this many candidates
RING_UNITS = 3.0  # face units: the ring of skin around a region ...
MIN_RING_ALLOWED = 0.8  # ... that must be this much searchable skin
MAX_RING_VALLEY = 0.05  # ... and at most this much dark valley (folds, hair: the base's map)
CREASE_UNITS = 2.0  # face units: the band beside a region searched for a dark crease ...
MAX_CREASE_RIDGE = 3.8  # ... whose 90th-percentile dark-line Hessian (``ridge_1``, L units) stays below this
SIZE_TOLERANCE = 5.0  # a region may be this many times smaller/larger than a reference region
ELONGATION_TOLERANCE = 3.0  # ... and this many times less/more elongated
MASK_MARGIN_UNITS = 3.0  # clean skin starts this far (face units) from a reference mask


class ReferenceError(SkinRetouchError, ValueError):
    """A reference image or mask cannot be used (the message says why)."""


class FeatureBackbone(Protocol):
    """Per-pixel features of a working-grid image (the plug-in interface)."""

    name: str

    def features(self, image: np.ndarray, *, skin: np.ndarray, unit: float) -> np.ndarray:
        """(h, w, 3) float32 RGB, (h, w) float32 skin weight, px per face unit -> (h, w, C) float32."""


class DescriptorBackbone:
    """The default features: multi-scale colour/texture/line descriptors (numba, CPU)."""

    name = "descriptors"

    def features(self, image: np.ndarray, *, skin: np.ndarray, unit: float) -> np.ndarray:
        return skin_descriptors(ks.rgb_to_lab(image), skin, unit=unit)


def load_references(pairs: list[tuple[Path, Path]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read (reference image, reference mask) file pairs.

    Parameters
    ----------
    pairs : list of (Path, Path)
        1..``MAX_REFERENCES`` pairs. A mask marks the defect with the pixels
        :func:`skinretouch.imageio.masks.read_mask` selects (non-zero, not transparent).

    Returns
    -------
    list of ((H, W, 3) float32 RGB in [0, 1], (H, W) bool)

    Raises
    ------
    ReferenceError
        Wrong count, unreadable file, size mismatch or empty mask.
    """
    from PIL import Image

    pairs = list(pairs)
    if not 1 <= len(pairs) <= MAX_REFERENCES:
        raise ReferenceError(f"give 1 to {MAX_REFERENCES} reference image/mask pairs, got {len(pairs)}")
    out = []
    for image_path, mask_path in pairs:
        try:
            with Image.open(image_path) as im:
                image = np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255.0)
            mask = read_mask(mask_path)
        except (OSError, ValueError, MaskError) as exc:
            raise ReferenceError(f"cannot read reference {image_path} / {mask_path}: {exc}") from exc
        out.append(check_reference(image, mask, name=f"{image_path} / {mask_path}"))
    return out


def check_reference(image: np.ndarray, mask: np.ndarray, *, name: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    """Validate one in-memory (image, mask) pair; returns them as float32 RGB and bool."""
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ReferenceError(f"{name}: image must be (H, W, 3) RGB, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise ReferenceError(f"{name}: image must be float in [0, 1], got dtype {image.dtype}")
    if mask.ndim != 2:
        raise ReferenceError(f"{name}: mask must be (H, W), got shape {mask.shape}")
    if mask.shape != image.shape[:2]:
        raise ReferenceError(
            f"{name}: mask size {mask.shape[1]}x{mask.shape[0]} does not match image size "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    mask = mask.astype(bool)
    if not mask.any():
        raise ReferenceError(f"{name}: mask is empty (no pixel marks the defect)")
    if mask.mean() > 0.25:
        raise ReferenceError(f"{name}: mask covers {mask.mean():.0%} of the image; mark only the defect")
    return np.ascontiguousarray(image, dtype=np.float32), mask



class ReferenceDetector:
    """Detects the defect kind shown by 1-3 reference (image, mask) pairs."""

    name = "reference"

    def __init__(self, config: DetectConfig, references, *, base=None, backbone=None) -> None:
        from .classical_detector import ClassicalDetector

        references = list(references)
        if not 1 <= len(references) <= MAX_REFERENCES:
            raise ReferenceError(f"give 1 to {MAX_REFERENCES} references, got {len(references)}")
        self.config = config
        self.base = base if base is not None else ClassicalDetector(config)
        self.backbone = backbone if backbone is not None else DescriptorBackbone()
        self._rng_seed = 0
        positives, negatives, shapes = [], [], []
        for index, (image, mask) in enumerate(references):
            image, mask = check_reference(image, mask, name=f"reference {index + 1}")
            grid = self._analyse(image)
            small_mask = _to_grid(mask, grid)
            if not small_mask.any():
                raise ReferenceError(
                    f"reference {index + 1}: the mask lies outside the skin the detector searches "
                    "(no face region or skin under it)"
                )
            positives.append(grid.features[small_mask])
            margin = _disk(MASK_MARGIN_UNITS * grid.unit)
            clean = grid.allowed & ~ndi.binary_dilation(small_mask, structure=margin)
            negatives.append(_sample(grid.features[clean], SKIN_SAMPLE, self._rng_seed + index))
            shapes.extend(_region_examples(small_mask, grid.features, grid.unit))
        self._positives = np.concatenate(positives).astype(np.float32)
        self._ref_negatives = np.concatenate(negatives).astype(np.float32)
        self._examples = shapes  # (shape, mean feature) per example region
        if not shapes:
            raise ReferenceError("the reference masks hold no region")

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        """Find regions of the reference kind in one photo.

        Parameters
        ----------
        image : (H, W, 3) float32 RGB in [0, 1]

        Returns
        -------
        Detection
            Spots of kind ``"reference"`` (score = mean defect probability); protected
            features, scale and method from the base detector.
        """
        started = time.perf_counter()
        grid = self._analyse(np.ascontiguousarray(image, dtype=np.float32), orientation)
        h, w = image.shape[:2]
        feats = grid.features
        allowed = grid.allowed
        probability = self._probability(feats, allowed)
        labels_small, scores = self._regions(probability, allowed, feats, grid.valleys, grid.unit)
        cores_small = labels_small > 0
        labels_small = _extend(labels_small, (probability >= EXTEND_PROBABILITY) & allowed, grid.unit)

        labels = np.zeros((h, w), np.int32)
        rx, ry, rw, rh = grid.roi
        if labels_small.any():
            roi_labels = cv2.resize(labels_small, (rw, rh), interpolation=cv2.INTER_NEAREST)
            if (rw, rh) != labels_small.shape[::-1]:
                # Redraw outlines from the interpolated probability at full resolution.
                grown = cv2.resize(ndi.grey_dilation(labels_small, size=(3, 3)), (rw, rh),
                                   interpolation=cv2.INTER_NEAREST)
                full_p = cv2.resize(probability, (rw, rh), interpolation=cv2.INTER_LINEAR)
                roi_labels = np.where(full_p >= EXTEND_PROBABILITY, grown, 0).astype(np.int32)
            labels[ry : ry + rh, rx : rx + rw] = roi_labels
            cores = np.zeros((h, w), bool)
            cores[ry : ry + rh, rx : rx + rw] = cv2.resize(cores_small.astype(np.uint8), (rw, rh),
                                                           interpolation=cv2.INTER_NEAREST) > 0
        labels[grid.detection.protected_mask] = 0
        if labels.any():
            labels = _anchored(labels, cores)
        spots = []
        relabelled = np.zeros_like(labels)
        for old in range(1, len(scores) + 1):
            region = labels == old
            if not region.any():
                continue
            new = len(spots) + 1
            relabelled[region] = new
            spots.append(Spot(label=new, kind="reference", score=float(scores[old - 1])))
        log.debug("reference detected", spots=len(spots), ms=round(1000.0 * (time.perf_counter() - started), 1))
        base = grid.detection
        return Detection(labels=relabelled, spots=spots, protected_mask=base.protected_mask,
                         protected=base.protected, scale=base.scale, method=base.method)  # fmt: skip

    # --- steps ----------------------------------------------------------------------------

    def _analyse(self, image: np.ndarray, orientation: int = 1) -> _Grid:
        # The working grid (skin, searchable area, scale) is the classical analysis; its
        # spots are not needed.
        analysis = self.base.analyse(image, orientation=orientation)
        rx, ry, rw, rh = analysis.roi
        allowed = analysis.allowed_small
        sh, sw = allowed.shape
        small = analysis.small
        skin = analysis.skin_small * allowed
        unit = analysis.unit
        features = np.ascontiguousarray(self.backbone.features(small, skin=skin, unit=unit), dtype=np.float32)
        if features.shape[:2] != (sh, sw):
            raise ValueError(f"backbone {self.backbone.name} returned {features.shape}, expected ({sh}, {sw}, C)")
        return _Grid(analysis.protection_only(), (rx, ry, rw, rh), allowed, unit, features,
                     analysis.hair_small)

    def _probability(self, feats: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Defect score in [0, 1] per pixel: likeness to the example times rareness in this skin.

        Likeness is the cosine between a pixel's feature vector and a defect prototype: the
        *direction* of the contrast (paler, pinker, line-shaped) transfers between photos
        better than its size, which varies from one defect to the next.  Rareness follows
        the MuSc principle within the one photo: the pixel's projection on that prototype's
        direction, over the projection that only ``1 - RARE_QUANTILE`` of this photo's skin
        pixels reach (and at least half the example's own), so a look the photo has
        everywhere (wrinkle highlights, pores) stays skin however much it resembles the
        example.
        """
        centre, spread = self._units(self._ref_negatives)
        defect = (self._positives - centre) / spread
        protos = _kmeans(defect, DEFECT_PROTOTYPES, seed=2)
        directions = protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-6)
        example = np.median(defect @ directions.T, axis=0)  # (k,) the example's projections
        pixels = (feats[allowed] - centre) / spread
        norms = np.maximum(np.linalg.norm(pixels, axis=1), 1e-6)
        projection = pixels @ directions.T  # (n, k)
        skin_level = np.quantile(projection, RARE_QUANTILE, axis=0)
        gate = np.maximum(skin_level * RARE_MARGIN, EXAMPLE_FRACTION * example)
        gate = np.maximum(gate, 1e-6)
        per_proto = (projection / norms[:, None]) * np.clip(projection / gate[None, :], 0.0, 1.0)
        score = np.zeros(allowed.shape, np.float32)
        score[allowed] = per_proto.max(axis=1)
        return score

    def _units(self, negatives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre and unit of each feature.

        The descriptors get fixed units (typical skin spreads, :data:`FEATURE_UNITS`), the
        same for every photo: a defect's Lab contrast is physical, so the example's
        direction in feature space transfers to a photo with rougher or smoother skin. Other
        backbones are whitened by the robust spread of the clean-skin samples.
        """
        if getattr(self.backbone, "name", "") == "descriptors" and negatives.shape[1] == len(DESCRIPTOR_NAMES):
            spread = np.array([FEATURE_UNITS[name.split("_")[0]] for name in DESCRIPTOR_NAMES], np.float32)
            return np.zeros(negatives.shape[1], np.float32), spread
        centre = np.median(negatives, axis=0)
        spread = 1.4826 * np.median(np.abs(negatives - centre), axis=0)
        return centre, np.maximum(spread, 0.05 * float(np.median(spread)) + 1e-6)

    def _regions(self, probability, allowed, feats, valleys, unit: float):
        """Grow regions from seeds, then judge each region as a whole against the examples.

        A region's mean feature vector is far less noisy than its pixels'. It is kept when
        its shape (size, elongation) is like an example region's, its mean points the same
        way (cosine >= ``REGION_LIKENESS``), it is at least ``REGION_STRENGTH`` as strong as
        the example along that direction and, when the photo offers enough candidate regions
        to tell what is ordinary here, it stands out among them (robust z >=
        ``REGION_RARE_Z``: the MuSc principle at region level).
        """
        grown = (probability >= GROW_PROBABILITY) & allowed
        labels, count = ndi.label(grown, structure=np.ones((3, 3), bool))
        self.last_regions = []
        if count == 0:
            return np.zeros_like(labels, dtype=np.int32), []
        index = np.arange(1, count + 1)
        peaks = ndi.maximum(probability, labels, index)
        means = ndi.mean(probability, labels, index)
        centre, spread = self._units(self._ref_negatives)
        refs = [((mean - centre) / spread, shape) for shape, mean in self._examples]
        objects = ndi.find_objects(labels)
        # The crease test reads the descriptors' dark-line Hessian; a plug-in backbone has none.
        reads_creases = getattr(self.backbone, "name", "") == "descriptors" and feats.shape[2] == len(DESCRIPTOR_NAMES)
        rows = []
        for i in range(count):
            if peaks[i] < SEED_PROBABILITY or objects[i] is None:
                continue
            region = labels[objects[i]] == i + 1
            ring_allowed, ring_valley = _ring_shares(labels, objects[i], i + 1, allowed, valleys, unit)
            if ring_allowed < MIN_RING_ALLOWED:
                continue  # on the edge of the skin: the contrast may be the edge itself
            if ring_valley > MAX_RING_VALLEY:
                continue  # the lit edge of a fold or a hair strand, not a defect of its own
            if reads_creases and _crease_beside(labels, objects[i], i + 1, feats, unit) > MAX_CREASE_RIDGE:
                continue  # a dark crease runs beside it: the lit edge of a skin fold
            shape = _shape_of(region, unit)
            mean = (feats[objects[i]][region].mean(axis=0) - centre) / spread
            best = None
            for ref_mean, ref_shape in refs:
                if not _like(shape, ref_shape):
                    continue
                size = max(float(np.linalg.norm(ref_mean)), 1e-6)
                along = float(mean @ ref_mean) / size
                cosine = along / max(float(np.linalg.norm(mean)), 1e-6)
                if best is None or along / size > best[1]:
                    best = (cosine, along / size)
            if best is not None:
                rows.append((i + 1, best[0], best[1]))
        strengths = np.array([r[2] for r in rows])
        if strengths.size >= REGION_RARE_MIN_COUNT:
            median = float(np.median(strengths))
            mad = max(1.4826 * float(np.median(np.abs(strengths - median))), 1e-3)
            z = (strengths - median) / mad
        else:
            z = np.full(strengths.size, np.inf)
        keep = np.zeros(count + 1, bool)
        for (label, cosine, strength), rare in zip(rows, z):
            ok = cosine >= REGION_LIKENESS and strength >= REGION_STRENGTH and rare >= REGION_RARE_Z
            keep[label] = ok
            self.last_regions.append({"label": label, "cosine": cosine, "strength": strength, "z": float(rare), "kept": ok})
        new_ids = np.cumsum(keep) * keep
        out = new_ids[labels].astype(np.int32)
        scores = [float(means[i]) for i in range(count) if keep[i + 1]]
        return out, scores


class _Grid:
    """One photo analysed on the base detector's working grid."""

    def __init__(self, detection, roi, allowed, unit, features, valleys) -> None:
        self.valleys = valleys
        self.detection = detection
        self.roi = roi
        self.allowed = allowed
        self.unit = unit
        self.features = features


def _to_grid(mask: np.ndarray, grid: _Grid) -> np.ndarray:
    rx, ry, rw, rh = grid.roi
    sh, sw = grid.allowed.shape
    crop = mask[ry : ry + rh, rx : rx + rw].astype(np.float32)
    if (sw, sh) != (rw, rh):
        crop = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA)
    return (crop >= 0.5) & grid.allowed


def _extend(labels: np.ndarray, candidates: np.ndarray, unit: float) -> np.ndarray:
    """Spread kept regions over connected candidate pixels, at most ``EXTEND_UNITS`` away.

    A region is judged on its confident pixels; the faint ends of the same line (and the
    gaps between fragments of it) belong to the same defect and must be repaired with it.
    """
    out = labels.astype(np.int32, copy=True)
    if not out.any():
        return out
    free = candidates & (out == 0)
    for _ in range(max(1, int(round(EXTEND_UNITS * unit)))):
        spread = ndi.grey_dilation(out, size=(3, 3))
        step = free & (spread > 0)
        if not step.any():
            break
        out[step] = spread[step]
        free &= ~step
    return out


def _anchored(labels: np.ndarray, cores: np.ndarray) -> np.ndarray:
    """Drop the pieces of the final mask that hold no pixel of a kept region's own core.

    Redrawing at full resolution and cutting out protected pixels can leave slivers of an
    extended region apart from it; alone they are nothing the region test accepted.
    """
    pieces, count = ndi.label(labels > 0, structure=np.ones((3, 3), bool))
    anchored = np.zeros(count + 1, bool)
    anchored[np.unique(pieces[cores & (pieces > 0)])] = True
    anchored[0] = False
    return np.where(anchored[pieces], labels, 0).astype(np.int32)


def _region_examples(mask: np.ndarray, feats: np.ndarray, unit: float) -> list:
    """((area, elongation), mean feature vector) of each region of a reference mask."""
    labels, count = ndi.label(mask, structure=np.ones((3, 3), bool))
    out = []
    for i, sl in enumerate(ndi.find_objects(labels)):
        if sl is not None:
            region = labels[sl] == i + 1
            out.append((_shape_of(region, unit), feats[sl][region].mean(axis=0)))
    return out


def _ring_shares(labels, sl, label, allowed, valleys, unit) -> tuple[float, float]:
    """Shares of searchable skin and of dark valleys in the ring of ``RING_UNITS`` around one region."""
    pad = int(math.ceil(RING_UNITS * unit)) + 1
    h, w = labels.shape
    y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
    x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
    region = labels[y0:y1, x0:x1] == label
    ring = ndi.binary_dilation(region, structure=_disk(RING_UNITS * unit)) & ~region
    if not ring.any():
        return 0.0, 1.0
    return float(allowed[y0:y1, x0:x1][ring].mean()), float(valleys[y0:y1, x0:x1][ring].mean())


def _crease_beside(labels, sl, label, feats, unit) -> float:
    """How strongly a dark line runs beside one region (90th percentile of ``ridge_1``).

    The lit edge of a skin fold comes with the fold's dark crease right next to it (a
    valley beside the ridge); a pale scar has only the faint positive side lobes of its own
    line profile there. The base detector's valley map misses shallow creases, so the
    descriptor's dark-line Hessian is read directly in a band of ``CREASE_UNITS``.
    """
    pad = int(math.ceil(CREASE_UNITS * unit)) + 1
    h, w = labels.shape
    y0, y1 = max(0, sl[0].start - pad), min(h, sl[0].stop + pad)
    x0, x1 = max(0, sl[1].start - pad), min(w, sl[1].stop + pad)
    region = labels[y0:y1, x0:x1] == label
    band = ndi.binary_dilation(region, structure=_disk(CREASE_UNITS * unit)) & ~region
    if not band.any():
        return 0.0
    return float(np.percentile(feats[y0:y1, x0:x1, DESCRIPTOR_NAMES.index("ridge_1")][band], 90))


def _shape_of(region: np.ndarray, unit: float) -> tuple[float, float]:
    """(area in face units squared, elongation = major/minor axis) of one region."""
    ys, xs = np.nonzero(region)
    area = ys.size / (unit * unit)
    if ys.size < 3:
        return area, 1.0
    cov = np.cov(np.stack([ys, xs]).astype(np.float64)) + np.eye(2) / 12.0
    eig = np.linalg.eigvalsh(cov)
    return area, float(math.sqrt(eig[1] / max(eig[0], 1e-6)))


def _like(shape, ref) -> bool:
    area, elong = shape
    ref_area, ref_elong = ref
    return (ref_area / SIZE_TOLERANCE <= area <= ref_area * SIZE_TOLERANCE
            and ref_elong / ELONGATION_TOLERANCE <= elong <= ref_elong * ELONGATION_TOLERANCE)  # fmt: skip


def _sample(rows: np.ndarray, n: int, seed: int) -> np.ndarray:
    if rows.shape[0] <= n:
        return rows
    pick = np.random.default_rng(seed).choice(rows.shape[0], size=n, replace=False)
    return rows[np.sort(pick)]


def _kmeans(points: np.ndarray, k: int, *, seed: int, iterations: int = 12) -> np.ndarray:
    """Plain k-means (k-means++ start); returns up to ``k`` centres (fewer for few points)."""
    points = np.asarray(points, np.float32)
    k = max(1, min(k, points.shape[0] // 3 or 1))
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(points.shape[0])]]
    d = ((points - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = float(d.sum())
        if total <= 0:
            break
        centres.append(points[rng.choice(points.shape[0], p=d / total)])
        d = np.minimum(d, ((points - centres[-1]) ** 2).sum(1))
    centres = np.stack(centres)
    for _ in range(iterations):
        assign = _nearest_index(points, centres)
        for j in range(centres.shape[0]):
            members = points[assign == j]
            if members.size:
                centres[j] = members.mean(0)
    return centres


def _nearest_index(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    cc = (centres * centres).sum(1)
    return np.argmin(cc[None, :] - 2.0 * points @ centres.T, axis=1)


def _disk(radius: float) -> np.ndarray:
    r = max(1, int(round(radius)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return xx * xx + yy * yy <= r * r
