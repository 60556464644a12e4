"""The precision stage: a small learned verifier that drops candidate spots which are not blemishes.

The candidate stage (:class:`.classical.ClassicalDetector`) is tuned for recall; it also returns
pores, fold shadows, beard stubble, moles of sizes its rules miss. Each candidate is measured on
its own neighbourhood of the photo, resampled to ``GRID_PX_PER_UNIT`` pixels per face unit, by
figures that carry **no absolute colour** so they read the same on pale and on very dark skin:

- shape: size (face units), elongation, solidity;
- contrast against the ring of skin around it (Lab differences), and the same in units of that
  ring's own variation at this scale (so a contrast is "how far out of this skin's noise");
- the hue of the change (red, brown, grey), edge sharpness relative to a linear ramp, inner
  uniformity and plateau, inner texture against the ring's (moles and papules are smoother),
  how busy the ring is (a piece of a wrinkle), the ring's noise against the photo's other
  candidates', distance to a protected feature, how many candidates are near (acne clusters);
- the candidate stage's own kind and score.

A gradient-boosted tree model (:mod:`..kernels.boost`) turns them into a probability; a
candidate below the model's threshold (chosen by leave-one-photo-out on the dev split, see
``skinretouch.benchmark.train_verifier``) is dropped. The model is a small JSON file shipped
in the package (``verifier_model.json``), rebuilt from scratch by ``make train-verifier``.
Without it the stage lets everything through and says so (``skinretouch doctor``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..config import DetectVerifyConfig
from ..imageio import unit_floats
from ..kernels import skin as ks
from ..kernels.boost import BoostedTrees
from ..kernels.labels import label_boxes
from ..logs import get_logger
from .pixels import checked_pixels
from .types import BBox, Detection, Spot

__all__ = [
    "DEFAULT_VERIFIER_MODEL",
    "FEATURE_NAMES",
    "VerifiedDetector",
    "Verifier",
    "candidate_features",
    "load_verifier",
]

log = get_logger(__name__)

DEFAULT_VERIFIER_MODEL = Path(__file__).resolve().parent / "verifier_model.json"
MODEL_FORMAT = "skinretouch-verifier/1"

GRID_PX_PER_UNIT = 2.0  # the neighbourhood is measured at this many px per face unit
MARGIN_UNITS = 6.0  # neighbourhood margin around a candidate's box (at least its radius)
NOISE_FLOOR = 0.5  # Lab units: no skin is quieter than this (8-bit steps, compression)
NEIGHBOUR_UNITS = 15.0  # candidates closer than this (centre to centre) are neighbours
PROTECTED_CAP_UNITS = 10.0  # distances to protected features are capped here
KINDS = ("papule", "pustule", "dark_spot", "blackhead")

FEATURE_NAMES = (
    "log_radius", "elongation", "solidity",
    "d_l", "d_a", "d_b", "z_l", "z_a", "z_b", "z_peak",
    "hue", "dark_share", "edge_sharpness", "edge_profile", "inner_texture", "uniformity", "plateau",
    "ring_busy", "ring_noise_rel", "protected_dist", "neighbours",
    "score", *(f"kind_{k}" for k in KINDS),
)  # fmt: skip
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}


# --- features -------------------------------------------------------------------------------


def candidate_features(
    image: np.ndarray, detection: Detection, *, roi: BBox | None = None, boxes: np.ndarray | None = None
) -> np.ndarray:
    """Measure every spot of ``detection`` on ``image``.

    Parameters
    ----------
    image : (H, W, 3) RGB, float32 in [0, 1] or stored integers, the stored grid of ``detection``
    detection : Detection
        Its spots are the candidates; ``scale`` sets the face unit.
    roi : (x, y, w, h), optional
        Where the labels can be (the detector's search area): only it is scanned for boxes.
    boxes : (n + 1, 4) int, optional
        ``(y0, x0, y1, x1)`` of each label when already known.

    Returns
    -------
    (len(detection.spots), len(FEATURE_NAMES)) float64
        Row ``i`` describes ``detection.spots[i]``; columns as :data:`FEATURE_NAMES`.
    """
    spots = detection.spots
    feats = np.zeros((len(spots), len(FEATURE_NAMES)), np.float64)
    if not spots:
        return feats
    boxes = _spot_boxes(detection, roi) if boxes is None else boxes
    scale = max(float(detection.scale), 1e-6)
    centres = np.zeros((len(spots), 2))
    for i, spot in enumerate(spots):
        box = boxes[spot.label]
        feats[i] = _one_candidate(image, detection, spot, box, scale)
        centres[i] = (0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3]))
    # Photo-level normalisations: against the photo's other candidates.
    noise = feats[:, _F["ring_noise_rel"]]
    noise = np.maximum(noise, NOISE_FLOOR)  # 0 where a spot had no ring to measure
    feats[:, _F["ring_noise_rel"]] = np.log(noise / float(np.median(noise)))
    gaps = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1)) / scale
    feats[:, _F["neighbours"]] = (gaps < NEIGHBOUR_UNITS).sum(axis=1) - 1
    return feats


def _spot_boxes(detection: Detection, roi: BBox | None) -> np.ndarray:
    """``(y0, x0, y1, x1)`` per label on the stored grid (row ``k``: label ``k``)."""
    largest = max(spot.label for spot in detection.spots)
    if detection.label_boxes is not None and detection.label_boxes.shape[0] > largest:
        return np.asarray(detection.label_boxes, np.int64)
    labels = detection.labels
    x, y = 0, 0
    if roi is not None:
        x, y, w, h = roi
        labels = labels[y : y + h, x : x + w]
    boxes = label_boxes(labels, largest)
    if boxes is None:  # labels beyond the spots' (never from the classical detector)
        boxes = label_boxes(labels, int(labels.max()))
    return boxes + np.array([y, x, y, x], np.int64)


def _one_candidate(image, detection, spot: Spot, box, scale: float) -> np.ndarray:
    out = np.zeros(len(FEATURE_NAMES))
    kind = spot.kind
    for k in KINDS:
        out[_F[f"kind_{k}"]] = float(kind == k)
    out[_F["score"]] = spot.score
    y0, x0, y1, x1 = (int(v) for v in box)
    if y0 >= y1 or x0 >= x1:
        return out
    h, w = detection.labels.shape
    r_box = 0.5 * max(y1 - y0, x1 - x0)
    margin = int(math.ceil(max(MARGIN_UNITS * scale, r_box)))
    cy0, cx0 = max(0, y0 - margin), max(0, x0 - margin)
    cy1, cx1 = min(h, y1 + margin), min(w, x1 + margin)
    zoom = GRID_PX_PER_UNIT / scale
    size = (max(3, round((cx1 - cx0) * zoom)), max(3, round((cy1 - cy0) * zoom)))
    rgb = np.ascontiguousarray(unit_floats(image[cy0:cy1, cx0:cx1]))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
    labels = detection.labels[cy0:cy1, cx0:cx1]
    own = _resized_mask(labels == spot.label, size)
    if not own.any():
        return out
    others = _resized_mask((labels > 0) & (labels != spot.label), size) & ~own
    protected = _resized_mask(detection.protected_mask[cy0:cy1, cx0:cx1], size)
    lab_raw = ks.rgb_to_lab(rgb)
    lab = cv2.GaussianBlur(lab_raw, (0, 0), 0.5 * GRID_PX_PER_UNIT)
    px = GRID_PX_PER_UNIT
    area = float(own.sum())
    r_px = math.sqrt(area / math.pi)
    out[_F["log_radius"]] = math.log(max(r_px / px, 0.1))

    dist_out = cv2.distanceTransform((~own).astype(np.uint8), cv2.DIST_L2, 3)
    ring_width = max(2.0 * px, 0.6 * r_px)
    ring = (dist_out > 1.0) & (dist_out <= 1.0 + ring_width) & ~others
    if (ring & ~protected).sum() >= 8:
        ring &= ~protected
    if ring.sum() < 8:
        ring = (dist_out > 0) & (dist_out <= 1.0 + 2 * ring_width)
    if not ring.any():  # the spot fills its whole neighbourhood: nothing to compare it with
        return out
    ring_lab = lab[ring]
    median = np.median(ring_lab, axis=0)
    noise = np.maximum(1.4826 * np.median(np.abs(ring_lab - median), axis=0), NOISE_FLOOR)
    delta = lab - median
    inside = delta[own]
    direction = inside.mean(axis=0)
    norm = float(np.linalg.norm(direction))
    unit_dir = direction / norm if norm > 1e-6 else np.array([-1.0, 0.0, 0.0])
    contrast = inside @ unit_dir
    peak = float(contrast.max())
    core = contrast >= 0.6 * peak if peak > 0 else np.ones(contrast.shape, bool)
    core_delta = inside[core].mean(axis=0)
    out[_F["d_l"]], out[_F["d_a"]], out[_F["d_b"]] = core_delta
    z = core_delta / noise
    out[_F["z_l"]], out[_F["z_a"]], out[_F["z_b"]] = z
    directional_noise = float(np.sqrt(np.sum((unit_dir * noise) ** 2)))
    out[_F["z_peak"]] = peak / directional_noise
    out[_F["hue"]] = math.atan2(core_delta[2], core_delta[1])
    out[_F["dark_share"]] = -core_delta[0] / (np.abs(core_delta).sum() + 1e-6)
    out[_F["plateau"]] = float(core.mean())
    out[_F["uniformity"]] = float(contrast.std() / max(peak, 1e-6))

    # Shape from the mask's moments and hull.
    ys, xs = np.nonzero(own)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if xs.size > 1 else np.eye(2) * 0.25
    eig = np.linalg.eigvalsh(cov + np.eye(2) * 0.25)
    out[_F["elongation"]] = math.sqrt(eig[1] / eig[0])
    contours, _ = cv2.findContours(own.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.vstack(contours))
    hull_area = cv2.contourArea(hull) + 0.5 * cv2.arcLength(hull, True) + 1.0
    out[_F["solidity"]] = min(1.0, area / hull_area)

    # Edge: the steepest slope of the spot's own colour change near its outline against a
    # linear ramp from centre to edge, and how much of the change is plateau: a mole's edge
    # is a step (the area at 3/4 of the peak nearly that at 1/4), a papule's a wide slope.
    along = (delta @ unit_dir).astype(np.float32)
    gx = cv2.Sobel(along, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(along, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    grad = np.sqrt(gx * gx + gy * gy)
    near = dist_out <= 2.0
    ramp = max(peak, 1e-6) / max(r_px, 1.0)
    out[_F["edge_sharpness"]] = float(np.percentile(grad[near], 90) / ramp)
    zone = dist_out <= ring_width
    if peak > 0:
        out[_F["edge_profile"]] = float((along[zone] >= 0.75 * peak).sum() / max(1, (along[zone] >= 0.25 * peak).sum()))

    # Texture: fine lightness detail in the spot's inner part against the ring's (a mole or a
    # swollen papule is smoother than the skin; a flat brown mark keeps the skin's texture).
    lightness = lab_raw[..., 0]
    fine = lightness - cv2.GaussianBlur(lightness, (0, 0), px)
    inner = cv2.erode(own.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(px)).astype(bool)
    inner = inner if inner.sum() >= 6 else own
    inner_sd = float(fine[inner].std()) if inner.sum() >= 4 else 0.0
    ring_sd = float(fine[ring].std())
    out[_F["inner_texture"]] = inner_sd / max(ring_sd, 0.1)
    out[_F["ring_busy"]] = float((ring_lab @ unit_dir - median @ unit_dir >= 0.5 * peak).mean()) if peak > 0 else 0.0
    out[_F["ring_noise_rel"]] = float(noise[0])
    if protected.any():
        dist_protected = cv2.distanceTransform((~protected).astype(np.uint8), cv2.DIST_L2, 3)
        nearest = float(dist_protected[own].min()) / px
    else:
        nearest = PROTECTED_CAP_UNITS
    out[_F["protected_dist"]] = min(nearest, PROTECTED_CAP_UNITS)
    return out


def _resized_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


# --- the model and the stage ----------------------------------------------------------------


@dataclass(frozen=True)
class Verifier:
    """A fitted model and the probability a candidate needs to be kept."""

    model: BoostedTrees
    threshold: float
    feature_names: tuple[str, ...] = FEATURE_NAMES
    info: dict | None = None

    def probability(self, features: np.ndarray) -> np.ndarray:
        return self.model.probability(features)

    def filter(self, image: np.ndarray, detection: Detection, *, roi: BBox | None = None,
               in_place: bool = False) -> Detection:
        """``detection`` without the candidates the model rejects (labels renumbered 1..n).

        ``in_place`` rewrites ``detection.labels`` instead of a copy (a full-size copy costs
        more than the verification itself on a large photo).
        """
        if not detection.spots:
            return detection
        boxes = _spot_boxes(detection, roi)
        features = candidate_features(image, detection, roi=roi, boxes=boxes)
        keep = self.probability(features) >= self.threshold
        labels = detection.labels if in_place else detection.labels.copy()
        kept: list[Spot] = []
        new_boxes = [np.zeros(4, np.int64)]
        for spot, keep_it in zip(detection.spots, keep):
            y0, x0, y1, x1 = (int(v) for v in boxes[spot.label])
            window = labels[y0:y1, x0:x1]
            new_label = len(kept) + 1 if keep_it else 0
            if new_label != spot.label:
                window[window == spot.label] = new_label
            if keep_it:
                kept.append(replace(spot, label=new_label))
                new_boxes.append(boxes[spot.label])
        return replace(detection, labels=labels, spots=kept, label_boxes=np.stack(new_boxes).astype(np.int64))

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "features": list(self.feature_names),
            "threshold": self.threshold,
            "bias": self.model.bias,
            "feature": self.model.feature.tolist(),
            "split": [[None if math.isinf(v) else round(v, 6) for v in row] for row in self.model.threshold],
            "leaf": np.round(self.model.leaf, 6).tolist(),
            "info": self.info or {},
        }

    @classmethod
    def from_json(cls, data: dict) -> Verifier:
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"not a verifier model (format {data.get('format')!r}, want {MODEL_FORMAT!r})")
        names = tuple(data["features"])
        if names != FEATURE_NAMES:
            raise ValueError("the verifier model was trained on other features; run `make train-verifier`")
        split = np.array([[np.inf if v is None else v for v in row] for row in data["split"]], np.float64)
        model = BoostedTrees(
            feature=np.asarray(data["feature"], np.int64).reshape(split.shape),
            threshold=split,
            leaf=np.asarray(data["leaf"], np.float64),
            bias=float(data["bias"]),
        )
        return cls(model=model, threshold=float(data["threshold"]), feature_names=names, info=data.get("info"))


def load_verifier(config: DetectVerifyConfig) -> Verifier | None:
    """The configured verifier, or None (stage off, or no model file: candidates pass unfiltered)."""
    if not config.enabled:
        return None
    path = Path(config.model) if config.model else DEFAULT_VERIFIER_MODEL
    if not path.is_file():
        log.warning("verifier model missing: candidates are not filtered", path=str(path),
                    fix="make train-verifier")
        return None
    verifier = Verifier.from_json(json.loads(path.read_text()))
    threshold = min(1.0, max(0.0, verifier.threshold + config.threshold_shift))
    return replace(verifier, threshold=threshold)


class VerifiedDetector:
    """The classical candidates, each kept only if the verifier accepts it."""

    def __init__(self, base, verifier: Verifier) -> None:
        self.base = base
        self.verifier = verifier
        self.name = getattr(base, "name", "detector")
        self.thread_safe = getattr(base, "thread_safe", False)  # the verifier keeps nothing either
        self.reads_stored_integers = getattr(base, "reads_stored_integers", False)  # it reads crops

    def analyse(self, image: np.ndarray, *, orientation: int = 1):
        return self.base.analyse(image, orientation=orientation)

    def candidates(self, image: np.ndarray, *, orientation: int = 1):
        """The candidate stage's detection and the analysis it searched (for training)."""
        image = checked_pixels(image) if self.reads_stored_integers else np.ascontiguousarray(image, dtype=np.float32)
        analysis = self.base.analyse(image, orientation=orientation)
        return self.base.find_spots(image, analysis), analysis

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        detection, analysis = self.candidates(image, orientation=orientation)
        started = time.perf_counter()
        verified = self.verifier.filter(image, detection, roi=analysis.roi, in_place=True)
        log.debug("verified", candidates=len(detection.spots), kept=len(verified.spots),
                  ms=round(1000.0 * (time.perf_counter() - started), 1))
        return verified
