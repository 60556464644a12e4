"""Plug-in box detectors in ONNX (e.g. a YOLO acne model the user trained), refined to pixel masks.

Expected model layout (what Ultralytics YOLOv8/YOLO11 ``export(format="onnx")`` writes):

- one input, ``(1, 3, S, S)`` float32, RGB in ``[0, 1]``, the photo letterboxed to ``S x S``
  (aspect kept, centred, padded with grey 114/255). ``S`` is read from the model when static,
  else given as ``input_size``;
- first output ``(1, 4 + C, N)``: per candidate box ``cx, cy, w, h`` in input pixels, then
  ``C`` class scores in ``[0, 1]`` (no objectness). ``(1, N, 4 + C)`` is accepted too (the
  longer axis is taken as N). With ``objectness=True`` the layout is YOLOv5's
  ``(1, N, 5 + C)``: ``cx, cy, w, h, objectness, classes``; score = objectness x class.

Boxes above ``score_threshold`` go through class-wise non-maximum suppression, are mapped back
to the photo, and each is refined to a pixel mask by a classical segmenter: Lab contrast
against the box's surrounding ring, thresholded (Otsu, at least 40 % of the peak) and kept as
the connected part nearest the box centre. A detector that only knows boxes thus hands the
removal kernels a spot's real outline, and pixels around it stay untouched.

SAM 2 as a refiner: not in this build (:class:`Sam2Refiner` reports why); boxes are always
refined by the classical segmenter.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import structlog
from scipy import ndimage as ndi

from ..detection import Detection, Spot
from ..kernels import skin as ks
from ..scale import image_scale
from .inpaint_base import EngineUnavailable, WeightsError
from .runtime import OnnxRuntimeBackend

__all__ = ["OnnxBoxDetector", "Sam2Refiner", "letterbox", "nms", "refine_box"]

log = structlog.get_logger(__name__)

LETTERBOX_GREY = 114.0 / 255.0
BOX_CONTEXT = 0.5  # the ring read around a box, as a fraction of its size
MIN_PEAK_FRACTION = 0.4  # a mask pixel has at least this share of the box's peak contrast


class Sam2Refiner:
    """SAM 2 box-to-mask refiner: not available in this build."""

    REASON = ("unavailable: SAM 2 refinement is not implemented in this build; boxes are refined "
              "by the classical Lab-contrast segmenter")  # fmt: skip

    @classmethod
    def available(cls, weights: str | Path | None = None) -> tuple[bool, str]:
        return False, cls.REASON

    def __init__(self, weights: str | Path) -> None:
        raise EngineUnavailable(self.REASON)


class OnnxBoxDetector:
    """A user-trained ONNX box detector, its boxes refined to pixel masks."""

    name = "onnx"

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        input_size: int | None = None,
        class_kinds: tuple[str, ...] = ("spot",),
        objectness: bool = False,
        base=None,
        device: str = "cpu",
        sam2_weights: str | Path | None = None,
    ) -> None:
        """
        Parameters
        ----------
        model_path : path
            The ONNX file (layout in the module docstring).
        score_threshold, iou_threshold : float
            Box score needed; IoU above which the weaker of two same-class boxes is dropped.
        input_size : int, optional
            ``S`` when the model's input size is dynamic.
        class_kinds : tuple of str
            Spot kind reported for each class index (the last one repeats for extra classes).
        objectness : bool
            YOLOv5 layout (objectness column).
        base : detector, optional
            Gives protected features, scale and method (a ClassicalDetector); spots are cut
            off protected pixels. Without it nothing is protected and the scale comes from
            the photo's size.
        sam2_weights : path, optional
            Asks for SAM 2 refinement, which this build lacks: logged, classical refiner used.
        """
        path = Path(model_path)
        if not path.is_file():
            raise WeightsError(f"ONNX detector not found: {path}")
        ok, reason = OnnxRuntimeBackend.available(device)
        if not ok:
            raise EngineUnavailable(reason)
        self.runner = OnnxRuntimeBackend(path, device=device)
        session = self.runner.session
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise WeightsError(f"{path}: expected one input, the model has {len(inputs)}")
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        static = shape[-1] if isinstance(shape[-1], int) else None
        self.size = int(input_size or static or 640)
        if static and input_size and static != input_size:
            raise WeightsError(f"{path}: input is {static} px, input_size says {input_size}")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.class_kinds = tuple(class_kinds) or ("spot",)
        self.objectness = bool(objectness)
        self.base = base
        if sam2_weights:
            log.warning("sam2 refiner", reason=Sam2Refiner.REASON)

    def boxes(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, int]]:
        """Run the model: ``[((x0, y0, x1, y1) in photo pixels, score, class), ...]`` after NMS."""
        tensor, ratio, (pad_x, pad_y) = letterbox(image, self.size)
        raw = np.asarray(self.runner.session.run(None, {self.input_name: tensor})[0], np.float32)
        if raw.ndim == 3:
            raw = raw[0]
        if raw.ndim != 2:
            raise WeightsError(f"ONNX detector output must be (1, 4 + C, N) or (1, N, 4 + C), got {raw.shape}")
        head = 5 if self.objectness else 4
        if raw.shape[0] < raw.shape[1]:
            raw = raw.T  # (N, 4 + C)
        if raw.shape[1] <= head - 1:
            raise WeightsError(f"ONNX detector output has {raw.shape[1]} values per box, needs > {head}")
        if raw.shape[1] == head:  # a single class with no class column
            scores_all = np.ones((raw.shape[0], 1), np.float32)
        else:
            scores_all = raw[:, head:]
        if self.objectness:
            scores_all = scores_all * raw[:, 4:5]
        classes = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(raw.shape[0]), classes]
        keep = scores >= self.score_threshold
        cx, cy, bw, bh = (raw[keep, i] for i in range(4))
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        xyxy = (xyxy - np.array([pad_x, pad_y, pad_x, pad_y], np.float32)) / ratio
        h, w = image.shape[:2]
        xyxy = np.clip(xyxy, 0, [w, h, w, h])
        scores, classes = scores[keep], classes[keep]
        out = []
        for c in np.unique(classes):
            idx = np.flatnonzero(classes == c)
            for i in nms(xyxy[idx], scores[idx], self.iou_threshold):
                out.append((tuple(float(v) for v in xyxy[idx[i]]), float(scores[idx[i]]), int(c)))
        return sorted(out, key=lambda b: -b[1])

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        """Boxes from the model, each refined to a pixel mask; protected features from ``base``."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
        h, w = image.shape[:2]
        if self.base is not None:
            # Protected features from the shared analysis; the classical spots are not needed.
            reference = self.base.analyse(image, orientation=orientation).protection_only()
            protected_mask, protected = reference.protected_mask, reference.protected
            scale, method = reference.scale, reference.method
        else:
            protected_mask, protected = np.zeros((h, w), bool), []
            scale, method = image_scale(h, w), "onnx"
        labels = np.zeros((h, w), np.int32)
        spots: list[Spot] = []
        for box, score, cls in self.boxes(image):
            mask = refine_box(image, box) & ~protected_mask & (labels == 0)
            if not mask.any():
                continue
            label = len(spots) + 1
            labels[mask] = label
            kind = self.class_kinds[min(cls, len(self.class_kinds) - 1)]
            spots.append(Spot(label=label, kind=kind, score=score))
        log.debug("onnx detected", spots=len(spots))
        return Detection(labels=labels, spots=spots, protected_mask=protected_mask, protected=protected,
                         scale=float(scale), method=method)  # fmt: skip


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """(H, W, 3) float32 RGB -> ((1, 3, size, size) float32, ratio, (pad_x, pad_y)).

    Input pixel = photo pixel * ratio + pad.
    """
    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    nh, nw = max(1, round(h * ratio)), max(1, round(w * ratio))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), LETTERBOX_GREY, np.float32)
    pad_y, pad_x = (size - nh) // 2, (size - nw) // 2
    canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), ratio, (float(pad_x), float(pad_y))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; boxes (N, 4) as x0, y0, x1, y1. Returns kept indices."""
    order = np.argsort(-scores)
    keep: list[int] = []
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return keep


def refine_box(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Pixel mask of the spot inside one box (photo pixels), by Lab contrast to the box's ring.

    Returns an (H, W) bool mask, empty when the box holds no contrast.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    bw, bh = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    mx, my = BOX_CONTEXT * bw + 2, BOX_CONTEXT * bh + 2
    cx0, cy0 = max(0, int(np.floor(x0 - mx))), max(0, int(np.floor(y0 - my)))
    cx1, cy1 = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
    out = np.zeros((h, w), bool)
    if cx1 - cx0 < 3 or cy1 - cy0 < 3:
        return out
    lab = ks.rgb_to_lab(image[cy0:cy1, cx0:cx1])
    yy, xx = np.mgrid[cy0:cy1, cx0:cx1]
    inside = (xx >= np.floor(x0)) & (xx < np.ceil(x1)) & (yy >= np.floor(y0)) & (yy < np.ceil(y1))
    ring = ~inside
    if not ring.any() or not inside.any():
        return out
    background = np.median(lab[ring], axis=0)
    delta = lab - background
    contrast = np.sqrt(delta[..., 0] ** 2 + (1.5 * delta[..., 1]) ** 2 + delta[..., 2] ** 2)
    contrast = cv2.GaussianBlur(contrast.astype(np.float32), (0, 0), 0.7)
    values = contrast[inside]
    peak = float(values.max())
    ring_level = float(np.quantile(contrast[ring], 0.9))
    if peak <= ring_level:
        return out
    threshold = max(_otsu(values), MIN_PEAK_FRACTION * peak, ring_level)
    candidate = (contrast >= threshold) & inside
    parts, count = ndi.label(candidate, structure=np.ones((3, 3), bool))
    if count == 0:
        return out
    # The part nearest the box centre, weighted by its contrast mass.
    centre_y, centre_x = (y0 + y1) / 2 - cy0, (x0 + x1) / 2 - cx0
    best, best_cost = 0, np.inf
    for i, sl in enumerate(ndi.find_objects(parts)):
        region = parts[sl] == i + 1
        ys, xs = np.nonzero(region)
        dist = np.hypot(ys.mean() + sl[0].start - centre_y, xs.mean() + sl[1].start - centre_x)
        cost = dist / max(float(contrast[sl][region].sum()), 1e-6) ** 0.5
        if cost < best_cost:
            best, best_cost = i + 1, cost
    mask = ndi.binary_fill_holes(parts == best)
    out[cy0:cy1, cx0:cx1] = mask
    return out


def _otsu(values: np.ndarray) -> float:
    v = values.astype(np.float64)
    if v.size < 2 or v.max() <= v.min():
        return float(v.max()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=64)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * centres)
    total_w, total_m = weight[-1], mean[-1]
    w1 = total_w - weight
    valid = (weight > 0) & (w1 > 0)
    between = np.zeros_like(centres)
    m0 = mean[valid] / weight[valid]
    m1 = (total_m - mean[valid]) / w1[valid]
    between[valid] = weight[valid] * w1[valid] * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between))])
