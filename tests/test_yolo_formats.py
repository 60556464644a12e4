"""YOLO ONNX exports in each published output layout, built as tiny graphs with the real
output shapes (onnx.helper; the outputs are constants added to a zero derived from the
input, so the graph consumes the photo like a real one).  Each form must put its boxes on
the planted spots; a segmentation export's mask head must give the pixel masks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from skinretouch.cli import main  # noqa: E402
from skinretouch.config import parse_config  # noqa: E402
from skinretouch.engines.formats.yolo_formats import anchor_count  # noqa: E402
from skinretouch.engines.inpaint_base import WeightsError  # noqa: E402
from skinretouch.engines.onnx_detector import OnnxBoxDetector  # noqa: E402
from skinretouch.detection.factory import build_detector as detector_from_config  # noqa: E402

S = 64  # model input side
A = anchor_count(S)  # 84 anchor points
PHOTO = (128, 160)
# letterbox of a 128 x 160 photo into 64: ratio 0.4, 6 px grey bars top and bottom
RATIO, PAD_Y = 0.4, 6.0
SPOTS = ((40, 50), (90, 120))  # (y, x) photo px
BOX = 6.0  # input px (15 photo px)
PROTO = S // 4


def _input_xy(y, x):
    return x * RATIO, y * RATIO + PAD_Y


def _photo():
    rng = np.random.default_rng(0)
    image = np.empty((*PHOTO, 3), np.float32)
    image[...] = (0.80, 0.62, 0.52)
    image += rng.normal(0.0, 0.01, size=image.shape).astype(np.float32)
    yy, xx = np.mgrid[: PHOTO[0], : PHOTO[1]]
    for y, x in SPOTS:
        image[np.hypot(yy - y, xx - x) <= 4] = (0.85, 0.30, 0.30)
    return np.clip(image, 0, 1)


def _model(path, outputs, *, dtype=np.float32, metadata=None, dynamic=False):
    """A graph whose outputs are ``outputs`` (name -> array) plus 0 x mean(input)."""
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    dims = ["batch", 3, "height", "width"] if dynamic else [1, 3, S, S]
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"]),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
    ]
    inits = [numpy_helper.from_array(np.zeros((1, 1), dtype), "zero")]
    graph_outputs = []
    for name, value in outputs.items():
        value = value.astype(dtype)
        inits += [numpy_helper.from_array(value, f"{name}_value"),
                  numpy_helper.from_array(np.ones(value.ndim, np.int64), f"{name}_rank")]  # fmt: skip
        nodes += [helper.make_node("Reshape", ["nothing", f"{name}_rank"], [f"{name}_zero"]),
                  helper.make_node("Add", [f"{name}_value", f"{name}_zero"], [name])]  # fmt: skip
        shape = ["n"] * value.ndim if dynamic else list(value.shape)
        graph_outputs.append(helper.make_tensor_value_info(name, elem, shape))
    graph = helper.make_graph(nodes, "yolo", [helper.make_tensor_value_info("images", elem, dims)], graph_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _rows(classes, *, objectness=False, coefficients=0):
    """(boxes, values) rows: spot 0 class 0, spot 1 class 1, a weaker duplicate of spot 0,
    and background rows scoring 0.01 whose mask coefficients are large (not class scores)."""
    first = 5 if objectness else 4
    rows = np.zeros((A * (3 if objectness else 1), first + classes + coefficients), np.float32)
    rows[:, :4] = (30.0, 30.0, BOX, BOX)
    rows[:, first : first + classes] = 0.01
    if objectness:
        rows[:, 4] = 0.02
    if coefficients:
        rows[:, first + classes :] = 5.0
    for row, ((y, x), cls, score) in enumerate(((SPOTS[0], 0, 0.9), (SPOTS[1], 1, 0.8), (SPOTS[0], 0, 0.6))):
        cx, cy = _input_xy(y, x)
        rows[row, :4] = (cx + 0.5 * (row == 2), cy, BOX, BOX)
        rows[row, first : first + classes] = 0.01
        rows[row, first + cls] = score
        if objectness:
            rows[row, 4] = 0.95
        if coefficients:
            rows[row, first + classes :] = 0.0
            rows[row, first + classes + cls] = 1.0  # prototype 0 for spot 0, 1 for spot 1
    return rows


def _protos():
    """Prototype 0 is on left of photo x = 50 (spot 0's centre), prototype 1 everywhere."""
    protos = np.full((1, 32, PROTO, PROTO), -8.0, np.float32)
    protos[0, 0, :, :5] = 8.0  # proto columns 0-4 = input x < 20 = photo x < 50
    protos[0, 1] = 8.0
    return protos


def _end2end(coefficients=0):
    rows = np.zeros((300, 6 + coefficients), np.float32)
    for row, ((y, x), cls) in enumerate(((SPOTS[0], 0), (SPOTS[1], 1))):
        cx, cy = _input_xy(y, x)
        rows[row, :6] = (cx - BOX / 2, cy - BOX / 2, cx + BOX / 2, cy + BOX / 2, 0.9 - 0.1 * row, cls)
        if coefficients:
            rows[row, 6 + cls] = 1.0
    return rows[None]


FORMS = {
    "yolov5": lambda: {"output0": _rows(2, objectness=True)[None]},
    "yolov8": lambda: {"output0": _rows(2).T[None]},
    "yolov8-segment": lambda: {"output0": _rows(2, coefficients=32).T[None], "output1": _protos()},
    "end2end": lambda: {"output0": _end2end()},
    "end2end-segment": lambda: {"output0": _end2end(32), "output1": _protos()},
}


def _found_masks(detection):
    return {spot.kind: detection.labels == spot.label for spot in detection.spots}


def _disc(y, x, r=4):
    yy, xx = np.mgrid[: PHOTO[0], : PHOTO[1]]
    return np.hypot(yy - y, xx - x) <= r


def _box_left_of_centre(y, x):
    """What prototype 0 cut to spot 0's box gives: the box's pixels left of x = 50."""
    half = BOX / RATIO / 2
    yy, xx = np.mgrid[: PHOTO[0], : PHOTO[1]] + 0.5
    return (abs(yy - y) <= half) & (xx >= x - half) & (xx < x)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_each_form_is_recognised_and_finds_the_spots(tmp_path, form, dtype):
    path = _model(tmp_path / f"{form}.onnx", FORMS[form](), dtype=dtype)
    detector = OnnxBoxDetector(path, score_threshold=0.5, class_kinds=("papule", "pustule"))
    assert detector.form == form and detector.layout.num_classes in (2, 1 if form.startswith("end2end") else 2)
    masks = _found_masks(detector.detect(_photo()))
    assert sorted(masks) == ["papule", "pustule"]  # the weaker duplicate was suppressed
    if form.endswith("segment"):
        # the mask head's shape, not the spot's: the left half of the box, square-cornered
        assert _iou(masks["papule"], _box_left_of_centre(*SPOTS[0])) > 0.85
        assert masks["pustule"].sum() > _disc(*SPOTS[1]).sum() * 2  # the whole box
    else:
        for kind, spot in zip(("papule", "pustule"), SPOTS):
            assert _iou(masks[kind], _disc(*spot)) > 0.6  # box refined to the spot's outline


def test_yoloe_export_with_metadata_and_dynamic_shapes(tmp_path):
    metadata = {"names": "{0: 'papule', 1: 'dark_spot'}", "task": "segment", "imgsz": "[64, 64]",
                "description": "Ultralytics YOLOE-11S-SEG model"}  # fmt: skip
    path = _model(tmp_path / "yoloe-11s-seg.onnx", FORMS["yolov8-segment"](), metadata=metadata, dynamic=True)
    detector = OnnxBoxDetector(path, score_threshold=0.5)
    assert (detector.form, detector.size, detector.class_kinds) == ("yolov8-segment", 64, ("papule", "dark_spot"))
    assert sorted(_found_masks(detector.detect(_photo()))) == ["dark_spot", "papule"]


def test_segment_export_on_clean_skin_finds_nothing(tmp_path):
    rows = _rows(2, coefficients=32)
    rows[:3, 4:6] = 0.01  # no box scores; the 32 coefficients stay large
    path = _model(tmp_path / "seg.onnx", {"output0": rows.T[None], "output1": _protos()})
    assert OnnxBoxDetector(path, score_threshold=0.25).detect(_photo()).spots == []


def test_unknown_outputs_and_a_forced_wrong_layout_are_clear(tmp_path):
    path = _model(tmp_path / "classifier.onnx", {"logits": np.zeros((1, 10), np.float32)})
    with pytest.raises(WeightsError, match=r"expected a YOLO export.*found outputs \[1, 10\]"):
        OnnxBoxDetector(path)
    path = _model(tmp_path / "v8.onnx", FORMS["yolov8"]())
    with pytest.raises(WeightsError, match=r"layout is 'end2end'.*\[1, 6, 84\]"):
        OnnxBoxDetector(path, layout="end2end")


def test_segment_export_through_config_and_process(tmp_path, capsys):
    model = _model(tmp_path / "acne-seg.onnx", FORMS["yolov8-segment"]())
    config_text = f"[detect.onnx]\nmodel = '{model}'\nscore = 0.5\nclass_names = ['papule', 'pustule']\n"
    config = parse_config(__import__("tomllib").loads(config_text))
    assert detector_from_config(config.detect).form == "yolov8-segment"
    config_file = tmp_path / "config.toml"
    config_file.write_text(config_text)
    assert main(["doctor", "--config", str(config_file)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["detector/mode"].split(None, 2)[2].startswith("onnx: plug-in YOLO detector")
    row = lines["plug-in/yolo-onnx"]
    assert " available " in row and f"yolov8-segment (float32, 2 classes, input 64 px, masks from mask head) at {model}" in row
    assert row.endswith("run by onnxruntime")
    source = tmp_path / "face.png"
    Image.fromarray((_photo() * 255).round().astype(np.uint8)).save(source)
    assert main(["process", str(source), "--config", str(config_file)]) == 0
    report = json.loads((tmp_path / "face.png.retouch.json").read_text())
    assert len(report["regions"]) == 2
    mask = np.asarray(Image.open(tmp_path / "face.png.mask.png")) > 0
    left = _box_left_of_centre(*SPOTS[0])
    assert mask[left].mean() > 0.95
    # right of spot 0's centre, past the 3-px dilation: untouched though the spot is there
    assert not mask[35:45, 54:58].any()


def test_old_flat_onnx_keys_name_their_new_place():
    from skinretouch.errors import ConfigError

    with pytest.raises(ConfigError, match=r"detect\.onnx_model.*moved to \[detect\.onnx\] model"):
        parse_config({"detect": {"onnx_model": "acne.onnx"}})
