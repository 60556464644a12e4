"""Issue 17: the classical path loads only what it uses; the faster mask encoder loses nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from skinretouch.imageio.masks import encode_mask_png, read_mask
from skinretouch.lazy import lazy_module

# What a `process` of a JPEG with the default (classical) config must never import: the
# neural, cluster and review stacks, and the libraries only other paths use. MediaPipe's Face
# Landmarker is part of the default path, but not mediapipe's drawing helpers (matplotlib) and
# audio tasks, nor its other vision tasks; cached kernels load without numba's registries (its
# typed containers, random generators).
NOT_ON_CLASSICAL_PATH = (
    "torch", "onnxruntime", "tensorrt", "celery", "kombu", "redis", "starlette", "uvicorn",
    "scipy.ndimage", "tifffile", "matplotlib", "PIL", "numba.typed.typedlist", "numba.typed.typeddict",
    "numba.np.random.generator_methods", "mediapipe.tasks.python.vision.hand_landmarker",
    "mediapipe.tasks.python.vision.pose_landmarker", "mediapipe.tasks.python.vision.gesture_recognizer",
)  # fmt: skip
# Imported, but as lazy stand-ins whose code never runs on this path.
DEFERRED_ON_CLASSICAL_PATH = (
    "mediapipe.tasks.python.vision.drawing_utils", "mediapipe.tasks.python.audio", "yaml", "numpy.f2py",
)  # fmt: skip

# main() with explicit arguments returns (run as the program, `process` ends the process).
PROBE = """
import json, sys
from skinretouch.cli import main
code = main(["process", sys.argv[1], "--out-dir", sys.argv[2]])
modules = sorted(sys.modules)
lazy = [name for name in modules if type(sys.modules[name]).__name__ == "_LazyModule"]
print(json.dumps({"code": code, "modules": modules, "lazy": lazy}))
"""


def test_classical_process_imports_no_neural_cluster_or_review_stack(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    skin = np.clip(np.array([200, 160, 140]) + rng.normal(0, 4, (160, 160, 3)), 0, 255).astype(np.uint8)
    skin[70:76, 70:76] = (150, 70, 70)  # one red spot
    photo = tmp_path / "portrait.jpg"
    Image.fromarray(skin).save(photo, quality=95)
    done = subprocess.run([sys.executable, "-c", PROBE, str(photo), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "portrait.retouched.jpg").exists()
    loaded = set(result["modules"]) - set(result["lazy"])
    assert not sorted(name for name in NOT_ON_CLASSICAL_PATH + DEFERRED_ON_CLASSICAL_PATH if name in loaded)


def _old_encoder(mask: np.ndarray) -> bytes:
    """The sidecar encoder before issue 17 (Pillow, default level), for comparison."""
    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (600, 513)])
def test_mask_png_has_the_same_pixels_as_before_and_is_no_larger(shape):
    rng = np.random.default_rng(shape[0])
    mask = np.zeros(shape, bool)
    for _ in range(12):  # round spots, as the pipeline's masks are
        y, x, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(1, 40)
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        mask |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    ours, before = encode_mask_png(mask), _old_encoder(mask)
    with Image.open(io.BytesIO(ours)) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "L", (shape[1], shape[0]))
        pixels = np.asarray(image)
    with Image.open(io.BytesIO(before)) as image:
        assert np.array_equal(pixels, np.asarray(image))
    assert set(np.unique(pixels)) <= {0, 255}
    assert len(ours) <= len(before) * 1.1 + 64


def test_mask_png_reads_back_through_the_mask_rule(tmp_path):
    mask = np.zeros((300, 700), bool)  # more rows than one band would not matter; bands must join
    mask[::37, 5:600] = True
    mask[255:258, :] = True  # across the first band boundary
    path = tmp_path / "m.png"
    path.write_bytes(encode_mask_png(mask))
    assert np.array_equal(read_mask(path, shape=mask.shape), mask)
    chunks = path.read_bytes()
    assert zlib.crc32(chunks[12:29]) == int.from_bytes(chunks[29:33], "big")  # IHDR CRC is right


def test_mask_png_refuses_a_non_2d_mask():
    with pytest.raises(ValueError, match="mask must be"):
        encode_mask_png(np.zeros((4, 4, 3), bool))


def test_lazy_module_imports_on_first_use_only():
    name = "skinretouch._lazy_probe_never_imported"
    stand_in = lazy_module("json")
    assert "lazy module 'json'" in repr(stand_in)
    assert stand_in.dumps([1]) == "[1]"
    assert name not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        lazy_module(name).anything


def test_speed_bench_children_may_write_bytecode_like_a_users_first_run(monkeypatch):
    # With PYTHONDONTWRITEBYTECODE inherited, every timed `process` compiled skinretouch from
    # source again (about 40 ms a run at 2048x2048), a cost no installed copy pays.
    from skinretouch.benchmark import speed

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = speed._env(None)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPATH"]
    assert "PYTHONDONTWRITEBYTECODE" not in speed._bytecode_env()
