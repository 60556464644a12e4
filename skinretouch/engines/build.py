"""``skinretouch engines build``: prepare the fast backends ahead of the first photo.

For LaMa: load the configured weights, export the ONNX graph (dynamic height/width) into the
engine cache, check ONNX Runtime against torch on a random crop and state the difference,
and build the TensorRT engine where TensorRT and a GPU are present.  FLUX.1 Fill runs eagerly
in diffusers; there is nothing to build for it.  Every step says what it did or why not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import EnginesConfig
from ..logs import get_logger
from .inpaint_base import EngineError
from .runtime import OnnxRuntimeBackend, TensorRTBackend, TorchBackend, default_cache_dir, resolve_device

__all__ = ["BuildStep", "build_engines", "run_build"]

log = get_logger(__name__)

# side (px) of the random crop used to compare backends after an export
CHECK_SIDE_PX = 96


@dataclass(frozen=True)
class BuildStep:
    """One line of the build's answer."""

    engine: str
    step: str
    ok: bool
    detail: str


def build_engines(config: EnginesConfig, *, force: bool = False, spec: object | None = None) -> list[BuildStep]:
    """Export and build what the configured engines can use; never raises for a missing piece.

    Parameters
    ----------
    config
        The engines section.
    force
        Re-export the ONNX graph even when the cache has it (TensorRT engines are keyed by
        the ONNX file's hash, so they follow).
    spec
        Generator layout (tests pass a tiny one); ``None`` is big-lama.
    """
    from .lama import LamaEngine

    steps: list[BuildStep] = []
    # exporting needs the weights and torch on the CPU, whatever backend runs later
    ok, reason = LamaEngine.available(dataclasses.replace(config, lama_backend="torch", device="cpu"))
    if not ok:
        steps.append(BuildStep("lama", "onnx", False, f"skipped: {reason}"))
    else:
        steps += _build_lama(config, force=force, spec=spec)
    steps.append(BuildStep("flux-fill", "-", True, "nothing to build: runs eagerly in diffusers"))
    return steps


def _build_lama(config: EnginesConfig, *, force: bool, spec: object | None) -> list[BuildStep]:
    from .lama import LamaEngine, lama_onnx_path, lama_tensorrt_profile
    from .runtime import file_sha256

    from .formats.lama_formats import sniff_lama_form

    if sniff_lama_form(config.lama_weights) == "onnx":
        return [BuildStep("lama", "onnx", True, f"nothing to export: {config.lama_weights} is an ONNX graph, run as is by onnxruntime")]
    steps = []
    engine = LamaEngine(config, spec=spec)
    try:
        model = engine.build_model()
    except EngineError as exc:
        return [BuildStep("lama", "weights", False, str(exc))]
    steps.append(BuildStep("lama", "weights", True, f"{config.lama_weights} loads strictly"))
    onnx_path = lama_onnx_path(config, file_sha256(config.lama_weights))
    if force:
        onnx_path.unlink(missing_ok=True)
    onnx_path = engine.ensure_onnx(model)
    steps.append(BuildStep("lama", "onnx", True, str(onnx_path)))

    ok, reason = OnnxRuntimeBackend.available("cpu")
    if ok:
        difference = _compare_with_torch(model, onnx_path)
        steps.append(BuildStep("lama", "onnxruntime-check", True, f"max abs diff vs torch {difference:.2e} on a {CHECK_SIDE_PX}px crop"))
    else:
        steps.append(BuildStep("lama", "onnxruntime-check", False, reason))

    device = resolve_device(config.device)
    ok, reason = TensorRTBackend.available(device)
    if not ok:
        steps.append(BuildStep("lama", "tensorrt", False, reason))
        return steps
    try:
        backend = TensorRTBackend(onnx_path, cache_dir=default_cache_dir(config.cache_dir), profile=lama_tensorrt_profile(config))
    except EngineError as exc:
        steps.append(BuildStep("lama", "tensorrt", False, str(exc)))
        return steps
    steps.append(BuildStep("lama", "tensorrt", True, str(backend.engine_path)))
    backend.close()
    return steps


def _compare_with_torch(model: object, onnx_path: object) -> float:
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, CHECK_SIDE_PX, CHECK_SIDE_PX), dtype=np.float32)
    hole = np.zeros((1, 1, CHECK_SIDE_PX, CHECK_SIDE_PX), np.float32)
    hole[..., CHECK_SIDE_PX // 3 : 2 * CHECK_SIDE_PX // 3, CHECK_SIDE_PX // 4 : 3 * CHECK_SIDE_PX // 4] = 1.0
    inputs = {"image": image, "hole": hole}
    reference = TorchBackend(model, input_names=("image", "hole"), device="cpu").run(inputs)
    exported = OnnxRuntimeBackend(onnx_path, device="cpu").run(inputs)
    return float(np.abs(reference - exported).max())


def run_build(config: EnginesConfig, *, force: bool = False) -> int:
    """CLI entry: print each step; exit 0 when nothing failed that was configured."""
    steps = build_engines(config, force=force)
    width = max(len(f"{s.engine}/{s.step}") for s in steps)
    failed = False
    for step in steps:
        state = "ok     " if step.ok else ("skipped" if step.detail.startswith(("skipped", "unavailable")) else "FAILED ")
        failed |= state == "FAILED "
        print(f"{step.engine + '/' + step.step:<{width}}  {state}  {step.detail}")
    print(f"\nengine cache: {default_cache_dir(config.cache_dir)}")
    return 1 if failed else 0
