"""Plug-in YOLO detectors in ONNX (e.g. an acne model the user trained), as pixel masks.

The export's form is read from its output shapes and metadata
(:mod:`.formats.yolo_formats`): YOLOv5, YOLOv8/11 detect and segment, YOLOE, YOLOv10 and
``nms=True`` exports, float32 or float16.  The input is ``(1, 3, S, S)`` RGB in ``[0, 1]``,
the photo letterboxed to ``S x S`` (aspect kept, centred, padded with grey 114/255); ``S`` is
read from the model when static, else from its metadata, else ``detect.onnx.input_size``.

Masks: a segmentation export's own mask head gives each box's pixel mask (its 32
coefficients weigh the prototype masks; the sum's sigmoid above 0.5, inside the box, read at
the photo's resolution).  A detect-only export's boxes are refined by a classical segmenter:
Lab contrast against the box's surrounding ring, thresholded (Otsu, at least 40 % of the
peak) and kept as the connected part nearest the box centre.  Either way the removal kernels
get a spot's real outline, and pixels around it stay untouched.

SAM 2 as a refiner: not in this build (:class:`Sam2Refiner` reports why).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage as ndi

from ..detection import Detection, Spot
from ..kernels import skin as ks
from ..logs import get_logger
from ..scale import image_scale
from .formats.yolo_formats import YoloLayout, decode, inspect_yolo
from .inpaint_base import EngineUnavailable, WeightsError
from .runtime import OnnxRuntimeBackend

__all__ = ["OnnxBoxDetector", "Sam2Refiner", "letterbox", "mask_from_prototypes", "nms", "refine_box"]

log = get_logger(__name__)

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
    """A user-trained YOLO ONNX detector; its boxes become pixel masks."""

    name = "onnx"

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        input_size: int | None = None,
        class_kinds: tuple[str, ...] = (),
        layout: str = "auto",
        base=None,
        device: str = "cpu",
        sam2_weights: str | Path | None = None,
    ) -> None:
        """
        Parameters
        ----------
        model_path : path
            The ONNX file (forms in :mod:`.formats.yolo_formats`).
        score_threshold, iou_threshold : float
            Box score needed; IoU above which the weaker of two same-class boxes is dropped.
        input_size : int, optional
            ``S`` when neither the model's input nor its metadata fixes it.
        class_kinds : tuple of str
            Spot kind reported for each class index (the last one repeats for extra classes);
            empty = the model's own class names (metadata), else ``"spot"``.
        layout : str
            ``"auto"`` (read from the outputs) or one form of ``YOLO_FORMS`` to insist on.
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
        self.path = path
        self.runner = OnnxRuntimeBackend(path, device=device)
        self.layout: YoloLayout = inspect_yolo(self.runner.session, path, layout=layout, input_size=input_size)
        self.size = int(self.layout.input_size)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.class_kinds = tuple(class_kinds) or self.layout.names or ("spot",)
        self.base = base
        if sam2_weights:
            log.warning("sam2 refiner", reason=Sam2Refiner.REASON)
        log.info("onnx detector", form=self.layout.form, classes=self.layout.num_classes, size=self.size)

    @property
    def form(self) -> str:
        return self.layout.form

    def candidates(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, int, np.ndarray | None]]:
        """Run the model: ``[((x0, y0, x1, y1) photo px, score, class, mask or None), ...]``,
        best first, after NMS; the mask (H, W) bool comes from a segmentation head."""
        tensor, ratio, (pad_x, pad_y) = letterbox(image, self.size)
        outputs = self.runner.session.run(None, {self.layout.input_name: tensor.astype(self.layout.input_dtype)})
        decoded, protos = decode(self.layout, outputs, self.score_threshold)
        pads = np.array([pad_x, pad_y, pad_x, pad_y], np.float32)
        h, w = image.shape[:2]
        xyxy = np.clip((decoded.xyxy - pads) / ratio, 0, [w, h, w, h])
        keep: list[int] = []
        if decoded.already_selected:
            keep = list(range(len(decoded.scores)))
        else:
            for c in np.unique(decoded.classes):
                idx = np.flatnonzero(decoded.classes == c)
                keep += [int(idx[i]) for i in nms(xyxy[idx], decoded.scores[idx], self.iou_threshold)]
        out = []
        for i in keep:
            box = tuple(float(v) for v in xyxy[i])
            mask = None
            if protos is not None and decoded.coefficients is not None:
                mask = mask_from_prototypes(decoded.coefficients[i], protos, box, (h, w), ratio=ratio,
                                            pad=(pad_x, pad_y), input_size=self.size)  # fmt: skip
            out.append((box, float(decoded.scores[i]), int(decoded.classes[i]), mask))
        return sorted(out, key=lambda b: -b[1])

    def boxes(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float, int]]:
        """Run the model: ``[((x0, y0, x1, y1) in photo pixels, score, class), ...]`` after NMS."""
        return [(box, score, cls) for box, score, cls, _mask in self.candidates(image)]

    def detect(self, image: np.ndarray, *, orientation: int = 1) -> Detection:
        """Boxes from the model as pixel masks (mask head, else refined); protected features
        from ``base``."""
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
        for box, score, cls, head_mask in self.candidates(image):
            mask = head_mask if head_mask is not None else refine_box(image, box)
            mask = mask & ~protected_mask & (labels == 0)
            if not mask.any():
                continue
            label = len(spots) + 1
            labels[mask] = label
            kind = self.class_kinds[min(cls, len(self.class_kinds) - 1)]
            spots.append(Spot(label=label, kind=kind, score=score))
        log.debug("onnx detected", spots=len(spots), form=self.layout.form)
        return Detection(labels=labels, spots=spots, protected_mask=protected_mask, protected=protected,
                         scale=float(scale), method=method)  # fmt: skip


def mask_from_prototypes(
    coefficients: np.ndarray,
    protos: np.ndarray,
    box: tuple[float, float, float, float],
    shape: tuple[int, int],
    *,
    ratio: float,
    pad: tuple[float, float],
    input_size: int,
) -> np.ndarray:
    """One box's pixel mask from a YOLO segmentation head, at the photo's resolution.

    Parameters
    ----------
    coefficients : (M,) ndarray
        The box's mask coefficients.
    protos : (M, mh, mw) ndarray
        Prototype masks over the letterboxed input (``mh = S/4`` for Ultralytics).
    box : (x0, y0, x1, y1)
        The box in photo pixels; the mask is cut to it.
    shape : (H, W)
        The photo's size.
    ratio, pad, input_size
        The letterbox: input pixel = photo pixel x ratio + pad.

    Returns
    -------
    (H, W) bool ndarray: sigmoid(coefficients . protos) > 0.5 inside the box.
    """
    h, w = shape
    out = np.zeros((h, w), bool)
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 <= x0 or y1 <= y0:
        return out
    channels, mh, mw = protos.shape
    logits = np.tensordot(coefficients.astype(np.float32), protos.reshape(channels, -1), axes=1).reshape(mh, mw)
    # photo pixel centre -> input pixel -> prototype pixel (centres aligned)
    xs = ((np.arange(x0, x1) + 0.5) * ratio + pad[0]) * (mw / input_size) - 0.5
    ys = ((np.arange(y0, y1) + 0.5) * ratio + pad[1]) * (mh / input_size) - 0.5
    map_x, map_y = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    sampled = cv2.remap(logits.astype(np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    inside = (np.arange(y0, y1)[:, None] + 0.5 >= box[1]) & (np.arange(y0, y1)[:, None] + 0.5 <= box[3])
    inside = inside & (np.arange(x0, x1)[None, :] + 0.5 >= box[0]) & (np.arange(x0, x1)[None, :] + 0.5 <= box[2])
    out[y0:y1, x0:x1] = (sampled > 0.0) & inside
    return out


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
