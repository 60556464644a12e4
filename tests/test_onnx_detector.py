"""The ONNX plug-in detector path, with a tiny YOLO-layout detector built here (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from skinretouch.engines.inpaint_base import EngineUnavailable, WeightsError  # noqa: E402
from skinretouch.engines.onnx_detector import OnnxBoxDetector, Sam2Refiner, nms, refine_box  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's legacy ONNX exporter

SIZE = 64  # model input, px
CELL = 8  # one candidate box per 8x8 cell
BOX = 12.0  # px, every box's side in input pixels


class _RednessYolo(torch.nn.Module):
    """Scores each 8x8 cell by its redness; YOLOv8 layout (1, 4 + 1, N): cx, cy, w, h, score."""

    def forward(self, image):
        redness = image[:, 0:1] - 0.5 * (image[:, 1:2] + image[:, 2:3])
        pooled = torch.nn.functional.max_pool2d(redness, CELL)  # (1, 1, 8, 8)
        score = torch.sigmoid(60.0 * (pooled - 0.28)).flatten(1)  # (1, 64)
        n = SIZE // CELL
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        cx = (xs.flatten().float() + 0.5) * CELL
        cy = (ys.flatten().float() + 0.5) * CELL
        side = torch.full_like(cx, BOX)
        boxes = torch.stack([cx, cy, side, side])[None]  # (1, 4, 64)
        return torch.cat([boxes, score[:, None]], dim=1)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "redness_yolo.onnx"
    torch.onnx.export(_RednessYolo(), (torch.zeros(1, 3, SIZE, SIZE),), str(path), input_names=["images"],
                      output_names=["output0"], opset_version=17, dynamo=False)  # fmt: skip
    return path


def _skin_with_spots(shape=(128, 160), centres=((40, 50), (90, 120)), radius=4.0):
    rng = np.random.default_rng(0)
    h, w = shape
    image = np.empty((h, w, 3), np.float32)
    image[...] = (0.80, 0.62, 0.52)
    image += rng.normal(0.0, 0.01, size=image.shape).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    truth = []
    for cy, cx in centres:
        disc = np.hypot(yy - cy, xx - cx) <= radius
        image[disc] = (0.85, 0.30, 0.30)
        truth.append(disc)
    return np.clip(image, 0, 1), truth


def test_tiny_onnx_detector_finds_spots_with_pixel_masks(model_path):
    image, truth = _skin_with_spots()
    detector = OnnxBoxDetector(model_path, score_threshold=0.5, class_kinds=("papule",))
    assert detector.size == SIZE  # read from the model's static input
    detection = detector.detect(image)
    assert len(detection.spots) == len(truth)
    assert {s.kind for s in detection.spots} == {"papule"}
    for disc in truth:
        labels = np.unique(detection.labels[disc])
        labels = labels[labels > 0]
        assert labels.size == 1
        mask = detection.labels == labels[0]
        iou = (mask & disc).sum() / (mask | disc).sum()
        # The box is 12 input px (~30 photo px) wide; the refined mask follows the 9-px disc.
        assert iou > 0.6, iou
    assert detection.mask.sum() < 3 * sum(d.sum() for d in truth)


def test_clean_skin_gives_no_boxes(model_path):
    image, _ = _skin_with_spots(centres=())
    assert OnnxBoxDetector(model_path, score_threshold=0.5).detect(image).spots == []


def test_refine_box_follows_the_spot_not_the_box():
    image, (disc,) = _skin_with_spots(centres=((60, 70),), radius=5.0)
    mask = refine_box(image, (50.0, 40.0, 90.0, 80.0))
    assert (mask & disc).sum() / disc.sum() > 0.9
    assert (mask & ~disc).sum() < 0.3 * disc.sum()


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.6, 0.9, 0.5]), 0.45) == [1, 2]


def test_missing_model_and_sam2_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        OnnxBoxDetector(tmp_path / "none.onnx")
    ok, reason = Sam2Refiner.available("sam2.pt")
    assert not ok and "not implemented" in reason
    with pytest.raises(EngineUnavailable):
        Sam2Refiner("sam2.pt")
