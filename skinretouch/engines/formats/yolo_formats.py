"""YOLO-family ONNX detector exports, told apart by their output shapes and metadata.

Forms (the name is what ``doctor`` and errors print); ``S`` is the input side, ``A`` the
anchor count (``(S/8)^2 + (S/16)^2 + (S/32)^2``, 8400 at 640), ``C`` the classes:

``yolov5``
    one output ``(1, 3A, 5 + C)``: ``cx, cy, w, h, objectness, classes``; score =
    objectness x class score.
``yolov8``
    YOLOv8 / YOLO11 ``detect``: one output ``(1, 4 + C, A)``: ``cx, cy, w, h, classes``
    (no objectness).  ``(1, A, 4 + C)`` is read too when metadata or ``A`` tell it from v5.
``yolov8-segment``
    YOLOv8 / YOLO11 / YOLOE ``segment``: ``(1, 4 + C + M, A)`` plus prototypes
    ``(1, M, S/4, S/4)`` (``M`` = 32): each box's last ``M`` numbers weigh the prototypes
    into its pixel mask.  They are *not* class scores.
``end2end``
    YOLOv10, YOLO26 and exports with ``nms=True``: ``(1, K, 6)`` after the model's own
    selection (``K`` = max detections, 300): ``x0, y0, x1, y1, score, class``.
``end2end-segment``
    the same with ``M`` mask coefficients after the 6 numbers, plus prototypes.

Ultralytics writes ``names``, ``task``, ``imgsz`` and ``end2end`` into the ONNX metadata;
they are read (as literals, never evaluated as code) when present.  FP16 exports take and
give float16: the input is cast to the model's type.  YOLOE exports (text/visual-prompt or
prompt-free) have the ``yolov8``/``yolov8-segment`` shapes with their vocabulary in ``names``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..inpaint_base import WeightsError

__all__ = ["YOLO_FORMS", "YoloLayout", "Decoded", "decode", "inspect_yolo", "anchor_count"]

YOLO_FORMS = ("yolov5", "yolov8", "yolov8-segment", "end2end", "end2end-segment")
LAYOUT_CHOICES = ("auto", *YOLO_FORMS)
EXPECTED = (
    "a YOLO export: (1, 3A, 5+C) YOLOv5, (1, 4+C, A) YOLOv8/11, (1, 4+C+32, A) + protos (1, 32, h, w) "
    "segment, or (1, K, 6[+32]) YOLOv10 / nms=True"
)
ONNX_FLOAT16 = "tensor(float16)"
MAX_END2END = 1000  # more rows than this is a raw head, not a list of final detections


@dataclass(frozen=True)
class YoloLayout:
    """How a YOLO export is fed and read."""

    form: str
    input_name: str
    input_dtype: Any  # np.float32 or np.float16
    input_size: int | None
    num_classes: int
    mask_coefficients: int  # 0 without a mask head
    names: tuple[str, ...]  # from the metadata; may be empty
    channels_first: bool  # (1, values, boxes) rather than (1, boxes, values)


@dataclass(frozen=True)
class Decoded:
    """Candidate detections in letterboxed input pixels, before any NMS of ours."""

    xyxy: np.ndarray  # (n, 4) float32
    scores: np.ndarray  # (n,)
    classes: np.ndarray  # (n,) int
    coefficients: np.ndarray | None  # (n, M) mask coefficients
    already_selected: bool  # end2end: the model ran its own NMS


def anchor_count(size: int) -> int:
    """Anchor points of a stride 8/16/32 head at input side ``size``."""
    return sum((size // stride) ** 2 for stride in (8, 16, 32))


def inspect_yolo(session: Any, path: Path, *, layout: str = "auto", input_size: int | None = None) -> YoloLayout:
    """The layout of an ONNX Runtime session's model.

    Output shapes are read from the graph; dynamic ones from one run on a grey input.

    Raises
    ------
    WeightsError
        The graph matches no YOLO form (the message says what was expected and found).
    """
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise WeightsError(f"{path}: expected {EXPECTED} with one image input; found {len(inputs)} inputs")
    model_input = inputs[0]
    shape = model_input.shape
    static = shape[-1] if isinstance(shape[-1], int) and shape[-1] > 0 else None
    meta = _metadata(session)
    size = int(input_size or static or meta.get("imgsz") or 640)
    if static and input_size and static != input_size:
        raise WeightsError(f"{path}: input is {static} px, input_size says {input_size}")
    dtype = np.float16 if model_input.type == ONNX_FLOAT16 else np.float32
    shapes = [tuple(o.shape) for o in session.get_outputs()]
    if any(not isinstance(d, int) or d <= 0 for s in shapes for d in s):
        probe = np.full((1, 3, size, size), 0.5, dtype)
        shapes = [tuple(np.shape(o)) for o in session.run(None, {model_input.name: probe})]
    names = tuple(meta.get("names", ()))
    form, num_classes, coefficients, channels_first = _classify(shapes, size, meta, names, layout, path)
    return YoloLayout(form, model_input.name, dtype, size, num_classes, coefficients, names, channels_first)


def _classify(
    shapes: list[tuple[int, ...]], size: int, meta: dict[str, Any], names: tuple[str, ...], layout: str, path: Path
) -> tuple[str, int, int, bool]:
    """(form, classes, mask coefficients, channels first) of concrete output shapes."""
    found = " + ".join(str(list(s)) for s in shapes)
    protos = next((s for s in shapes[1:] if len(s) == 4), None)
    coefficients = int(protos[1]) if protos else 0
    head = shapes[0]
    if len(head) == 3 and head[0] == 1:
        rows, values = int(head[1]), int(head[2])
    elif len(head) == 2:
        rows, values = int(head[0]), int(head[1])
    else:
        raise WeightsError(f"{path}: expected {EXPECTED}; found outputs {found}")
    known_classes = len(names) or None
    anchors = anchor_count(size)

    def fits(form: str) -> tuple[int, bool] | None:
        """(classes, channels_first) when the head's shape fits ``form``."""
        if form.startswith("end2end"):
            if (form == "end2end-segment") == bool(coefficients) and values == 6 + coefficients and rows <= MAX_END2END:
                return (known_classes or 1), False
            return None
        if form == "yolov5":
            first_class, boxes_expected, other = 5, 3 * anchors, anchors
        elif (form == "yolov8-segment") == bool(coefficients):
            first_class, boxes_expected, other = 4, anchors, 3 * anchors
        else:
            return None
        arrangements = ((values, rows, True), (rows, values, False))
        if form == "yolov5":
            arrangements = arrangements[::-1]  # v5 is written boxes first
        for boxes, per_box, channels_first in arrangements:
            classes = per_box - first_class - coefficients
            if classes < 1 or boxes <= per_box:
                continue
            if known_classes is not None:
                if classes == known_classes:
                    return classes, channels_first
            elif boxes == boxes_expected or boxes != other:
                return classes, channels_first
        return None

    if layout != "auto":
        fitted = fits(layout)
        if fitted is None:
            raise WeightsError(f"{path}: detect.onnx.layout is {layout!r}, but outputs {found} do not fit it; expected {EXPECTED}")
        return layout, fitted[0], coefficients, fitted[1]
    end2end_meta = str(meta.get("end2end", "")).lower() == "true" or meta.get("nms") is True
    raw_heads = ["yolov8-segment", "yolov8", "yolov5"] if rows < values else ["yolov5", "yolov8-segment", "yolov8"]
    selected = ["end2end-segment", "end2end"]
    # a raw head has one row per anchor point; a selected list has max-detections rows
    order = selected + raw_heads if end2end_meta or rows not in (anchors, 3 * anchors) else raw_heads + selected
    for form in order:
        fitted = fits(form)
        if fitted is not None:
            return form, fitted[0], coefficients, fitted[1]
    raise WeightsError(f"{path}: expected {EXPECTED}; found outputs {found}")


def decode(layout: YoloLayout, outputs: list[np.ndarray], score_threshold: float) -> tuple[Decoded, np.ndarray | None]:
    """Candidates above ``score_threshold`` from raw outputs, and the prototypes ``(M, h, w)``."""
    head = np.asarray(outputs[0], np.float32)
    head = head[0] if head.ndim == 3 else head
    if layout.channels_first:
        head = head.T
    protos = None
    if layout.mask_coefficients:
        protos = np.asarray(next(o for o in outputs[1:] if np.ndim(o) == 4), np.float32)[0]
    m = layout.mask_coefficients
    if layout.form.startswith("end2end"):
        xyxy = head[:, :4]
        scores = head[:, 4]
        classes = head[:, 5].astype(np.int64)
        coefficients = head[:, 6 : 6 + m] if m else None
    else:
        first_class = 5 if layout.form == "yolov5" else 4
        class_scores = head[:, first_class : first_class + layout.num_classes]
        if layout.form == "yolov5":
            class_scores = class_scores * head[:, 4:5]
        classes = class_scores.argmax(axis=1)
        scores = class_scores[np.arange(head.shape[0]), classes]
        cx, cy, w, h = (head[:, i] for i in range(4))
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        start = first_class + layout.num_classes
        coefficients = head[:, start : start + m] if m else None
    keep = scores >= score_threshold
    decoded = Decoded(
        xyxy=np.ascontiguousarray(xyxy[keep], np.float32),
        scores=scores[keep].astype(np.float32),
        classes=classes[keep].astype(np.int64),
        coefficients=None if coefficients is None else coefficients[keep].astype(np.float32),
        already_selected=layout.form.startswith("end2end"),
    )
    return decoded, protos


def _metadata(session: Any) -> dict[str, Any]:
    """Ultralytics' metadata as Python values (literals only; nothing is evaluated)."""
    try:
        raw = dict(session.get_modelmeta().custom_metadata_map)
    except Exception:  # noqa: BLE001 - no metadata is an ordinary case
        return {}
    meta: dict[str, Any] = {}
    for key, text in raw.items():
        try:
            meta[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            meta[key] = text
    names = meta.get("names")
    if isinstance(names, dict):
        meta["names"] = [str(names[k]) for k in sorted(names)]
    elif not isinstance(names, (list, tuple)):
        meta.pop("names", None)
    imgsz = meta.get("imgsz")
    if isinstance(imgsz, (list, tuple)) and imgsz:
        meta["imgsz"] = int(max(imgsz))
    elif not isinstance(imgsz, int):
        meta.pop("imgsz", None)
    args = meta.get("args")
    if isinstance(args, dict) and args.get("nms"):
        meta["nms"] = True
    return meta
