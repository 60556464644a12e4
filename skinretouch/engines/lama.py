"""LaMa (big-lama) inpainting: checkpoint loading, ONNX export and the engine.

Weights are the user's: the public ``big-lama/models/best.ckpt`` (a PyTorch Lightning
checkpoint whose generator sits under ``generator.``), IOPaint's traced ``big-lama.pt``
(TorchScript), or a plain generator ``state_dict`` saved with ``torch.save`` or as
``.safetensors``.
Loading is strict: a file for another architecture fails with the missing and unexpected key
names, never with a half-loaded model.

Checkpoints are read without running code from the file: ``torch.load(weights_only=True)``
first; a Lightning checkpoint also pickles its training config (omegaconf objects), which
that refuses, so it is then read by an unpickler that resolves only torch's tensor-rebuilding
globals and turns every other object into an inert placeholder (the tensors are all we use).
"""

from __future__ import annotations

import functools
import os
import pickle
import types
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from ..config import EnginesConfig
from .inpaint_base import EngineError, EngineUnavailable, InpaintEngine, WeightsError, missing_packages
from .runtime import (
    Backend,
    OnnxRuntimeBackend,
    ShapeProfile,
    TensorRTBackend,
    TorchBackend,
    default_cache_dir,
    file_sha256,
    resolve_backend,
    resolve_device,
)

__all__ = [
    "INPUT_NAMES",
    "LamaEngine",
    "export_onnx",
    "lama_onnx_path",
    "lama_tensorrt_profile",
    "load_generator_weights",
    "read_state_dict",
]

log = structlog.get_logger(__name__)

INPUT_NAMES = ("image", "hole")
OUTPUT_NAME = "fill"
GENERATOR_PREFIX = "generator."
# bump when the exported graph changes, so cached exports are redone
EXPORT_VERSION = "matmul-dft-1"
# ONNX opset of the export (TensorRT 10 and ONNX Runtime >= 1.16 support it)
ONNX_OPSET = 17
# How many key names an error message lists before "... and N more"
KEYS_SHOWN = 8


# --- reading weights -----------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The generator's tensors from a weights file, with any ``generator.`` prefix removed.

    Parameters
    ----------
    path
        ``.safetensors``, a ``torch.save`` file of a state_dict, or a Lightning checkpoint
        (``{"state_dict": {"generator.…": …, "discriminator.…": …}, …}``).

    Raises
    ------
    WeightsError
        The file is missing, unreadable, or holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no LaMa weights at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    else:
        raw = _torch_load_without_code(path)
    state = _find_state_dict(raw)
    if state is None:
        raise WeightsError(f"{path} holds no state_dict of tensors")
    if any(key.startswith(GENERATOR_PREFIX) for key in state):
        # a training checkpoint: keep the generator, drop discriminator and loss networks
        state = {key[len(GENERATOR_PREFIX) :]: value for key, value in state.items() if key.startswith(GENERATOR_PREFIX)}
    return state


def _find_state_dict(raw: Any) -> dict[str, Any] | None:
    import torch

    if isinstance(raw, Mapping):
        for wrapper in ("state_dict", "model", "generator"):
            inner = raw.get(wrapper)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                if wrapper == "generator":
                    return {GENERATOR_PREFIX + k: v for k, v in inner.items()}
                return dict(inner)
        if raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
            return dict(raw)
    return None


def _torch_load_without_code(path: Path) -> Any:
    import torch

    if _is_torchscript_archive(path):
        return _torchscript_state_dict(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # objects beyond tensors (a Lightning checkpoint's config): read inertly below
    except Exception as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_INERT_PICKLE)
    except Exception as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from exc


def _is_torchscript_archive(path: Path) -> bool:
    """TorchScript zips carry their graph as ``code/`` and ``constants.pkl`` entries."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _torchscript_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a TorchScript archive (IOPaint ships big-lama traced); its graph is
    deserialised, never run."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still reads
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise WeightsError(f"cannot read the TorchScript archive {path}: {exc}") from exc
    return dict(module.state_dict())


class _Inert:
    """Stands in for any non-tensor object of a checkpoint: accepts everything, does nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()


@functools.cache
def _allowed_globals() -> dict[str, Any]:
    """``module.name`` -> object for the globals a tensor checkpoint legitimately needs.

    Taken from torch's own weights-only allowlist when that private helper exists, plus the
    tensor rebuilders and containers spelled out here.
    """
    import collections

    import torch

    allowed: dict[str, Any] = {}
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed.update(_get_allowed_globals())
    except Exception:  # the helper is private; the explicit list below suffices for tensors
        pass
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"):
        if hasattr(torch._utils, name):
            allowed[f"torch._utils.{name}"] = getattr(torch._utils, name)
    allowed["collections.OrderedDict"] = collections.OrderedDict
    allowed["torch.Size"] = torch.Size
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[f"torch.{name}"] = getattr(torch, name)
    return allowed


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return _allowed_globals().get(f"{module}.{name}", _Inert)


_INERT_PICKLE = types.ModuleType("skinretouch_inert_pickle")
_INERT_PICKLE.Unpickler = _InertUnpickler  # type: ignore[attr-defined]
_INERT_PICKLE.load = lambda file, **kw: _InertUnpickler(file, **kw).load()  # type: ignore[attr-defined]
_INERT_PICKLE.__name__ = "pickle"  # torch.load checks the module name for its legacy format


def load_generator_weights(model: Any, path: str | os.PathLike[str]) -> None:
    """Load a big-lama ``state_dict`` into ``model`` strictly.

    Raises
    ------
    WeightsError
        Keys are missing or unexpected (both lists are named, up to :data:`KEYS_SHOWN`
        each), or a tensor's shape differs.
    """
    state = read_state_dict(path)
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise WeightsError(
            f"{path} does not fit the big-lama generator: "
            f"{len(missing)} missing key(s){_listed(missing)}; "
            f"{len(unexpected)} unexpected key(s){_listed(unexpected)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # shape mismatches
        raise WeightsError(f"{path} does not fit the big-lama generator: {exc}") from exc


def _listed(keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:KEYS_SHOWN])
    more = f" ... and {len(keys) - KEYS_SHOWN} more" if len(keys) > KEYS_SHOWN else ""
    return f" ({shown}{more})"


# --- export --------------------------------------------------------------------------------


def export_onnx(model: Any, path: str | os.PathLike[str], *, opset: int = ONNX_OPSET) -> Path:
    """Export a generator to ONNX with dynamic batch, height and width.

    The Fourier units are switched to the matrix DFT for the export (``torch.fft`` does not
    export to a graph ONNX Runtime or TensorRT can run) and back afterwards.  The file is
    written next to its final name and renamed, so a crash leaves no half file.

    Parameters
    ----------
    model
        A :class:`~skinretouch.engines.lama_arch.BigLamaGenerator` (weights loaded).
    path
        The ``.onnx`` file to write.
    """
    import torch

    from .lama_arch import FourierUnit, set_fft_impl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = {m: m.fft_impl for m in model.modules() if isinstance(m, FourierUnit)}
    model = model.eval()
    set_fft_impl(model, "matmul")
    multiple = getattr(model, "pad_multiple", 8)
    side = 8 * multiple
    sample = (torch.rand(1, 3, side, side), (torch.rand(1, 1, side, side) > 0.5).float())
    dims = {0: "batch", 2: "height", 3: "width"}
    partial = path.with_name(f".{path.name}.part")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the TorchScript exporter announces its deprecation; it is still the fast one
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            try:
                torch.onnx.export(
                    model,
                    sample,
                    str(partial),
                    input_names=list(INPUT_NAMES),
                    output_names=[OUTPUT_NAME],
                    dynamic_axes={name: dims for name in (*INPUT_NAMES, OUTPUT_NAME)},
                    opset_version=opset,
                    dynamo=False,  # seconds instead of minutes, and a plain graph for TensorRT
                )
            except (TypeError, NotImplementedError, RuntimeError) as exc:
                if "dynamo" not in str(exc) and "TorchScript" not in str(exc):
                    raise
                _export_with_dynamo(model, sample, partial, multiple=multiple, opset=opset)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        for module, impl in previous.items():
            module.fft_impl = impl
    return path


def _export_with_dynamo(model: Any, sample: tuple[Any, Any], path: Path, *, multiple: int, opset: int) -> None:
    """torch.export-based exporter, for torch releases without the TorchScript one."""
    import torch

    height = torch.export.Dim("height_blocks", min=1, max=1024)
    width = torch.export.Dim("width_blocks", min=1, max=1024)
    shape = {2: multiple * height, 3: multiple * width}
    torch.onnx.export(
        model,
        sample,
        str(path),
        input_names=list(INPUT_NAMES),
        output_names=[OUTPUT_NAME],
        dynamic_shapes={"image": shape, "hole": shape},
        opset_version=max(opset, 18),
        dynamo=True,
    )


def lama_onnx_path(config: EnginesConfig, weights_sha256: str) -> Path:
    """Cache file of the ONNX export of the weights with this hash."""
    return default_cache_dir(config.cache_dir) / f"lama-{weights_sha256[:16]}-{EXPORT_VERSION}.onnx"


def lama_tensorrt_profile(config: EnginesConfig) -> ShapeProfile:
    """Shapes the TensorRT engine is built for: up to the padded working size, batch 1."""
    largest = -(-config.lama_max_side_px // LamaEngine.pad_mod) * LamaEngine.pad_mod
    typical = min(largest, 512)
    shapes = []
    for name, channels in zip(INPUT_NAMES, (3, 1)):
        shapes.append((name, (1, channels, 32, 32), (1, channels, typical, typical), (1, channels, largest, largest)))
    return ShapeProfile(tuple(shapes))


# --- the engine ----------------------------------------------------------------------------


class LamaEngine(InpaintEngine):
    """big-lama on a crop around the hole, through the configured backend.

    ``spec`` exists for tests (a tiny generator); production uses ``BIG_LAMA``.
    """

    name = "lama"
    pad_mod = 8
    max_side_px = 512
    context_factor = 1.0
    min_context_px = 32

    def __init__(self, config: EnginesConfig, *, spec: Any = None) -> None:
        super().__init__(config)
        self.spec = spec
        self.backend: Backend | None = None
        self.backend_name: str | None = None
        self.device: str | None = None

    @property
    def working_max_side_px(self) -> int:
        return self.config.lama_max_side_px

    @classmethod
    def available(cls, config: EnginesConfig) -> tuple[bool, str]:
        if not config.lama_weights:
            return False, "no weights configured (engines.lama_weights is empty)"
        if not Path(config.lama_weights).expanduser().is_file():
            return False, f"no weights at {config.lama_weights} (engines.lama_weights)"
        absent = missing_packages("torch", *(["safetensors"] if config.lama_weights.endswith(".safetensors") else []))
        if absent:
            return False, f"package missing: {', '.join(absent)} (pip install '.[neural]')"
        device = resolve_device(config.device)
        if device == "cuda" and config.device == "cuda":
            from .runtime import cuda_available

            if not cuda_available():
                return False, "no GPU: engines.device is cuda but torch sees no CUDA device"
        try:
            backend, note = resolve_backend(config.lama_backend, device)
        except EngineUnavailable as exc:
            return False, str(exc)
        detail = f"weights {config.lama_weights}, backend {backend} on {device}"
        return True, detail + (f" (skipped: {note})" if note else "")

    def build_model(self) -> Any:
        """The generator with the configured weights loaded, on the CPU, in eval mode."""
        from .lama_arch import BIG_LAMA, BigLamaGenerator

        model = BigLamaGenerator(self.spec or BIG_LAMA)
        load_generator_weights(model, Path(self.config.lama_weights).expanduser())
        return model.eval()

    def ensure_onnx(self, model: Any | None = None) -> Path:
        """The cached ONNX export of the configured weights, exporting it if missing."""
        weights = Path(self.config.lama_weights).expanduser()
        path = lama_onnx_path(self.config, file_sha256(weights))
        if not path.is_file():
            log.info("lama onnx export", weights=str(weights), onnx=str(path))
            export_onnx(model if model is not None else self.build_model(), path)
        return path

    def load(self) -> None:
        ok, reason = self.available(self.config)
        if not ok:
            raise EngineUnavailable(f"lama: {reason}")
        device = resolve_device(self.config.device)
        backend_name, _note = resolve_backend(self.config.lama_backend, device)
        model = self.build_model()
        if backend_name == "torch":
            backend: Backend = TorchBackend(model, input_names=INPUT_NAMES, device=device)
        else:
            onnx_path = self.ensure_onnx(model)
            del model
            if backend_name == "onnxruntime":
                backend = OnnxRuntimeBackend(onnx_path, device=device)
            else:
                backend = TensorRTBackend(
                    onnx_path,
                    cache_dir=default_cache_dir(self.config.cache_dir),
                    profile=lama_tensorrt_profile(self.config),
                )
        self.backend, self.backend_name, self.device = backend, backend_name, device
        self.loaded = True
        log.info("lama loaded", backend=backend_name, device=device)

    def forward(self, image: np.ndarray, hole: np.ndarray, *, seed: int) -> np.ndarray:
        if self.backend is None:
            raise EngineError("lama: forward() before load()")
        batch_image = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        batch_hole = np.ascontiguousarray(hole[None, None], dtype=np.float32)
        out = self.backend.run({"image": batch_image, "hole": batch_hole})
        return out[0].transpose(1, 2, 0)

    def unload(self) -> None:
        if self.backend is not None:
            self.backend.close()
        self.backend = None
        super().unload()
