"""The ViT feature plug-in of reference mode, with a tiny random DINOv2-layout ViT built here."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from skinretouch.config import DetectConfig  # noqa: E402
from skinretouch.engines.backbone import VitBackbone, build_vit, load_vit_state  # noqa: E402
from skinretouch.engines.inpaint_base import WeightsError  # noqa: E402
from skinretouch.engines.reference import ReferenceDetector  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")

WIDTH, DEPTH, PATCH, HIDDEN, POSITIONS = 32, 2, 14, 64, 16


def _tiny_state(seed=0, registers=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    state = {
        "cls_token": rand(1, 1, WIDTH, scale=0.02),
        "pos_embed": rand(1, 1 + POSITIONS, WIDTH, scale=0.02),
        "patch_embed.proj.weight": rand(WIDTH, 3, PATCH, PATCH, scale=0.05),
        "patch_embed.proj.bias": torch.zeros(WIDTH),
        "norm.weight": torch.ones(WIDTH),
        "norm.bias": torch.zeros(WIDTH),
    }
    if registers:
        state["register_tokens"] = rand(1, registers, WIDTH, scale=0.02)
    for i in range(DEPTH):
        p = f"blocks.{i}."
        state |= {
            p + "norm1.weight": 1 + rand(WIDTH), p + "norm1.bias": rand(WIDTH),
            p + "attn.qkv.weight": rand(3 * WIDTH, WIDTH), p + "attn.qkv.bias": rand(3 * WIDTH),
            p + "attn.proj.weight": rand(WIDTH, WIDTH), p + "attn.proj.bias": rand(WIDTH),
            p + "ls1.gamma": rand(WIDTH) + 0.5,
            p + "norm2.weight": 1 + rand(WIDTH), p + "norm2.bias": rand(WIDTH),
            p + "mlp.fc1.weight": rand(HIDDEN, WIDTH), p + "mlp.fc1.bias": rand(HIDDEN),
            p + "mlp.fc2.weight": rand(WIDTH, HIDDEN), p + "mlp.fc2.bias": rand(WIDTH),
            p + "ls2.gamma": rand(WIDTH) + 0.5,
        }  # fmt: skip
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("vit") / "tiny_dinov2.pth"
    # A checkpoint wrapped the way training scripts save it: prefixes are stripped on load.
    torch.save({"backbone." + k: v for k, v in _tiny_state().items()}, path)
    return path


def test_layout_is_read_from_the_weights(weights):
    model = build_vit(load_vit_state(weights), heads=2)
    assert (model.width, model.patch_size, len(model.blocks)) == (WIDTH, PATCH, DEPTH)
    tokens = model(torch.zeros(1, 3, 3 * PATCH, 5 * PATCH))  # positions interpolated 4x4 -> 3x5
    assert tuple(tokens.shape) == (1, WIDTH, 3, 5)
    with_registers = build_vit(_tiny_state(registers=4), heads=2)
    assert tuple(with_registers(torch.zeros(1, 3, 56, 56)).shape) == (1, WIDTH, 4, 4)


def test_features_are_per_pixel_and_follow_the_image(weights):
    backbone = VitBackbone(weights, heads=2, tile_patches=4, patch_units=2.0)
    rng = np.random.default_rng(0)
    image = np.full((40, 52, 3), (0.8, 0.6, 0.5), np.float32) + rng.normal(0, 0.01, (40, 52, 3)).astype(np.float32)
    image[18:23, 24:29] = (0.9, 0.3, 0.3)  # a red spot
    feats = backbone.features(image, skin=np.ones((40, 52), np.float32), unit=1.0)
    assert feats.shape == (40, 52, WIDTH) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    # One patch spans 2 face units (2 working px here): the spot's features differ from the
    # skin's, and plain skin far from it is alike.
    spot, skin_a, skin_b = feats[20, 26], feats[5, 5], feats[35, 45]
    assert np.linalg.norm(spot - skin_a) > 3 * np.linalg.norm(skin_a - skin_b)


def test_onnx_export_matches_torch(weights, tmp_path):
    image = np.random.default_rng(1).random((30, 36, 3)).astype(np.float32)
    skin = np.ones((30, 36), np.float32)
    eager = VitBackbone(weights, heads=2, tile_patches=4).features(image, skin=skin, unit=1.0)
    onnx = VitBackbone(weights, heads=2, tile_patches=4, backend="onnxruntime",
                       onnx_path=tmp_path / "vit.onnx").features(image, skin=skin, unit=1.0)  # fmt: skip
    assert (tmp_path / "vit.onnx").is_file()
    np.testing.assert_allclose(onnx, eager, atol=1e-4)


def test_reference_detector_runs_on_the_vit_plug_in(weights):
    rng = np.random.default_rng(2)
    image = np.full((96, 96, 3), (0.78, 0.60, 0.50), np.float32) + rng.normal(0, 0.01, (96, 96, 3)).astype(np.float32)
    yy, xx = np.mgrid[:96, :96]
    ref_mask = np.hypot(yy - 30, xx - 30) <= 3
    reference = image.copy()
    reference[ref_mask] = (0.95, 0.95, 0.92)
    target = image.copy()
    target_spot = np.hypot(yy - 64, xx - 60) <= 3
    target[target_spot] = (0.95, 0.95, 0.92)
    backbone = VitBackbone(weights, heads=2, tile_patches=4)
    detector = ReferenceDetector(DetectConfig(), [(np.clip(reference, 0, 1), ref_mask)], backbone=backbone)
    detection = detector.detect(np.clip(target, 0, 1))
    assert detection.labels.shape == (96, 96)
    assert all(s.kind == "reference" for s in detection.spots)


def test_bad_weights_are_clear(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        VitBackbone(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"head.weight": torch.zeros(2, 2)}, junk)
    with pytest.raises(WeightsError, match="DINOv2"):
        VitBackbone(junk)
