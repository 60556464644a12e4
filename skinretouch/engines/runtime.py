"""Runtime backends: one way to run a network with named float32 inputs, three implementations.

- ``torch``: the eager module (reference; CPU or CUDA).
- ``onnxruntime``: an ONNX export run by ONNX Runtime (CUDA provider when asked and present).
- ``tensorrt``: an engine built by TensorRT from the ONNX export and cached on disk, keyed by
  the ONNX file's SHA-256, the GPU's name, the TensorRT version and the shape profile, so a
  changed model, card or TensorRT rebuilds it and nothing stale is ever run.

Every backend takes and returns numpy arrays in NCHW float32, so engines do not care which
one runs.  Heavy packages are imported inside functions: importing this module is cheap and
a missing package is an "unavailable" reason, never a crash.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..logs import get_logger
from .inpaint_base import EngineError, EngineUnavailable, missing_packages

__all__ = [
    "BACKENDS",
    "Backend",
    "OnnxRuntimeBackend",
    "ShapeProfile",
    "TensorRTBackend",
    "TorchBackend",
    "backend_available",
    "cuda_available",
    "default_cache_dir",
    "file_sha256",
    "resolve_backend",
    "resolve_device",
    "tensorrt_cache_key",
]

log = get_logger(__name__)

BackendName = Literal["torch", "onnxruntime", "tensorrt"]
# "auto" tries these in order, by device: TensorRT is the fast path on a GPU; on a CPU the
# eager module needs no export step, and ONNX Runtime stays available on request
AUTO_ORDER: dict[str, tuple[BackendName, ...]] = {
    "cuda": ("tensorrt", "torch", "onnxruntime"),
    "cpu": ("torch", "onnxruntime"),
}


def cuda_available() -> bool:
    """A CUDA device usable by torch; False without importing torch when it is absent."""
    if missing_packages("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def _nvidia_device_present() -> bool:
    """Cheap check for doctor (no torch import): the driver exposes a device node."""
    return Path("/dev/nvidia0").exists() or Path("/proc/driver/nvidia/gpus").is_dir()


def resolve_device(wanted: str) -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others pass through."""
    if wanted == "auto":
        # the device-node check spares importing torch (seconds) on machines without a GPU
        return "cuda" if _nvidia_device_present() and cuda_available() else "cpu"
    return wanted


def default_cache_dir(configured: str = "") -> Path:
    """Where ONNX exports and TensorRT engines are kept.

    ``configured`` (``engines.cache_dir``) wins; else ``$XDG_CACHE_HOME/skinretouch/engines``,
    else ``~/.cache/skinretouch/engines``.
    """
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "skinretouch" / "engines"


def file_sha256(path: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShapeProfile:
    """TensorRT optimisation profile: (min, opt, max) NCHW shape of each dynamic input."""

    shapes: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]

    def as_json(self) -> str:
        return json.dumps([[name, list(a), list(b), list(c)] for name, a, b, c in self.shapes])


def tensorrt_cache_key(*, model_sha256: str, gpu_name: str, tensorrt_version: str, profile: ShapeProfile, fp16: bool) -> str:
    """Name of the cached engine file for this model, card, TensorRT and profile.

    An engine is only valid for the exact GPU model and TensorRT version that built it, so
    both are part of the key (readable, for people looking into the cache) together with a
    hash over everything.
    """
    fingerprint = json.dumps(
        {
            "model": model_sha256,
            "gpu": gpu_name,
            "tensorrt": tensorrt_version,
            "profile": profile.as_json(),
            "fp16": fp16,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]
    gpu_slug = re.sub(r"[^A-Za-z0-9]+", "-", gpu_name).strip("-").lower() or "gpu"
    return f"{model_sha256[:12]}-{gpu_slug}-trt{tensorrt_version}-{digest}.engine"


class Backend(abc.ABC):
    """Runs one network: named NCHW float32 inputs in, the first output out."""

    name: ClassVar[BackendName]

    @classmethod
    @abc.abstractmethod
    def available(cls, device: str) -> tuple[bool, str]:
        """Whether this backend can run on ``device`` ("cpu" or "cuda"), and why not."""

    @abc.abstractmethod
    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Run the network once; returns its first output as float32 numpy."""

    def close(self) -> None:
        """Release the session/engine (the manager frees device caches afterwards)."""


class TorchBackend(Backend):
    """The eager torch module: ``module(*inputs in the given order)``."""

    name = "torch"

    def __init__(self, module: Any, *, input_names: Sequence[str], device: str) -> None:
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.input_names = tuple(input_names)

    @classmethod
    def available(cls, device: str) -> tuple[bool, str]:
        if missing_packages("torch"):
            return False, "unavailable: torch not installed (pip install '.[neural]')"
        if device == "cuda" and not cuda_available():
            return False, "unavailable: no CUDA GPU visible to torch"
        import torch

        return True, f"torch {torch.__version__} on {device}"

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        tensors = [torch.from_numpy(np.ascontiguousarray(inputs[n], np.float32)).to(self.device) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*tensors)
        return out.float().cpu().numpy()

    def close(self) -> None:
        self.module = None


class OnnxRuntimeBackend(Backend):
    """An ONNX file run by ONNX Runtime; CUDA provider on ``device="cuda"``."""

    name = "onnxruntime"

    def __init__(self, onnx_path: str | os.PathLike[str], *, device: str, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
        self.providers = self.session.get_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in self.providers:
            raise EngineUnavailable("unavailable: onnxruntime has no CUDA provider (install onnxruntime-gpu)")

    @classmethod
    def available(cls, device: str) -> tuple[bool, str]:
        if missing_packages("onnxruntime"):
            return False, "unavailable: onnxruntime not installed (pip install '.[neural]')"
        import onnxruntime as ort

        providers = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in providers:
            return False, "unavailable: onnxruntime has no CUDA provider (install onnxruntime-gpu)"
        return True, f"onnxruntime {ort.__version__}, providers {', '.join(providers)}"

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.ascontiguousarray(value, np.float32) for name, value in inputs.items()}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)

    def close(self) -> None:
        self.session = None


class TensorRTBackend(Backend):
    """A TensorRT engine built from an ONNX file (TensorRT >= 10 Python API), cached on disk.

    Building takes minutes for big-lama; the engine is serialised to
    ``cache_dir / tensorrt_cache_key(...)`` and deserialised on later loads.  Inputs and the
    output live in torch CUDA tensors, so no pycuda is needed.

    Not exercised by this project's tests: TensorRT needs an NVIDIA GPU and its wheels.
    """

    name = "tensorrt"
    # bytes of scratch memory TensorRT may use while choosing kernels
    WORKSPACE_BYTES = 4 << 30

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str],
        profile: ShapeProfile,
        fp16: bool = False,
    ) -> None:
        ok, reason = self.available("cuda")
        if not ok:
            raise EngineUnavailable(reason)
        import tensorrt as trt
        import torch

        self._trt = trt
        self._torch = torch
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.engine_path = self.engine_path_for(onnx_path, cache_dir=cache_dir, profile=profile, fp16=fp16)
        if not self.engine_path.exists():
            self.build(onnx_path, self.engine_path, profile=profile, fp16=fp16, logger=self.logger)
        runtime = trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            raise EngineError(f"TensorRT could not deserialise {self.engine_path}; delete it to rebuild")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]

    @classmethod
    def available(cls, device: str) -> tuple[bool, str]:
        if missing_packages("tensorrt"):
            return False, "unavailable: tensorrt not installed"
        if device != "cuda":
            return False, "unavailable: TensorRT needs a CUDA device (engines.device is cpu)"
        if missing_packages("torch"):
            return False, "unavailable: torch not installed (its CUDA tensors hold TensorRT's buffers)"
        if not cuda_available():
            return False, "unavailable: no CUDA GPU visible"
        import tensorrt as trt

        return True, f"tensorrt {trt.__version__}"

    @classmethod
    def engine_path_for(
        cls, onnx_path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str], profile: ShapeProfile, fp16: bool
    ) -> Path:
        """Cache file of the engine for this ONNX file on the current GPU and TensorRT."""
        import tensorrt as trt
        import torch

        key = tensorrt_cache_key(
            model_sha256=file_sha256(onnx_path),
            gpu_name=torch.cuda.get_device_name(0),
            tensorrt_version=trt.__version__,
            profile=profile,
            fp16=fp16,
        )
        return Path(cache_dir) / key

    @staticmethod
    def build(onnx_path: str | os.PathLike[str], engine_path: Path, *, profile: ShapeProfile, fp16: bool, logger: Any) -> None:
        """Parse the ONNX file, build a serialised engine for ``profile`` and write it atomically."""
        import tensorrt as trt

        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(Path(onnx_path).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise EngineError(f"TensorRT could not parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, TensorRTBackend.WORKSPACE_BYTES)
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        optimisation = builder.create_optimization_profile()
        for name, smallest, typical, largest in profile.shapes:
            optimisation.set_shape(name, smallest, typical, largest)
        config.add_optimization_profile(optimisation)
        log.info("tensorrt build", onnx=str(onnx_path), engine=str(engine_path))
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineError(f"TensorRT failed to build an engine from {onnx_path} (see its log above)")
        engine_path.parent.mkdir(parents=True, exist_ok=True)
        partial = engine_path.with_name(f".{engine_path.name}.part")
        partial.write_bytes(bytes(serialized))
        os.replace(partial, engine_path)

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        torch = self._torch
        stream = torch.cuda.current_stream()
        keep = []
        for name in self.input_names:
            tensor = torch.from_numpy(np.ascontiguousarray(inputs[name], np.float32)).cuda()
            keep.append(tensor)
            self.context.set_input_shape(name, tuple(tensor.shape))
            self.context.set_tensor_address(name, tensor.data_ptr())
        outputs = []
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            tensor = torch.empty(shape, dtype=torch.float32, device="cuda")
            outputs.append(tensor)
            self.context.set_tensor_address(name, tensor.data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise EngineError("TensorRT execution failed")
        stream.synchronize()
        return outputs[0].cpu().numpy()

    def close(self) -> None:
        self.context = None
        self.engine = None


BACKENDS: dict[str, type[Backend]] = {cls.name: cls for cls in (TorchBackend, OnnxRuntimeBackend, TensorRTBackend)}


def backend_available(name: str, device: str) -> tuple[bool, str]:
    """``Backend.available`` by name."""
    return BACKENDS[name].available(device)


def resolve_backend(wanted: str, device: str) -> tuple[BackendName, str | None]:
    """The backend to use for ``wanted`` ("auto" or a name) on ``device``.

    Returns
    -------
    (name, note)
        ``note`` says why "auto" skipped faster backends (``None`` when the first choice runs).

    Raises
    ------
    EngineUnavailable
        An explicitly requested backend cannot run here (its reason), or none can.
    """
    if wanted != "auto":
        ok, reason = backend_available(wanted, device)
        if not ok:
            raise EngineUnavailable(f"backend {wanted}: {reason}")
        return wanted, None  # type: ignore[return-value]
    skipped = []
    for name in AUTO_ORDER[device]:
        ok, reason = backend_available(name, device)
        if ok:
            return name, ("; ".join(skipped) or None)
        skipped.append(f"{name} {reason}")
    raise EngineUnavailable("no backend can run: " + "; ".join(skipped))
