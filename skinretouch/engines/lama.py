"""LaMa (big-lama) inpainting: weights of any public form, ONNX export and the engine.

Weights are the user's, in any form of :mod:`.formats.lama_formats`: lama's Lightning
``best.ckpt``, IOPaint's TorchScript ``big-lama.pt`` (tensors ``model.generator.…``), a plain
generator ``state_dict`` (``torch.save`` or ``.safetensors``), or a LaMa ONNX export (run as
is by ONNX Runtime).  Loading is strict: a file for another architecture fails with the
missing and unexpected key names, never with a half-loaded model; files are read without
running code stored in them (:mod:`.formats.safe_torch`).

Working resolution: crops whose short side is under ``engines.lama.working_min_side_px``
(default 256 px, the size big-lama was trained at) are upscaled to it, and crops whose long
side is over ``engines.lama_max_side_px`` downscaled (the cap wins); the fill is resized back
and the pipeline re-injects skin texture at the photo's own resolution.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..config import EnginesConfig
from .formats.lama_formats import LamaWeights, generator_spec, read_lama, sniff_lama_form
from ..logs import get_logger
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

log = get_logger(__name__)

INPUT_NAMES = ("image", "hole")
OUTPUT_NAME = "fill"
# bump when the exported graph changes, so cached exports are redone
EXPORT_VERSION = "matmul-dft-1"
# ONNX opset of the export (TensorRT 10 and ONNX Runtime >= 1.16 support it)
ONNX_OPSET = 17
# How many key names an error message lists before "... and N more"
KEYS_SHOWN = 8


# --- reading weights -----------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The generator's tensors from a torch-form weights file, prefixes removed.

    Parameters
    ----------
    path
        Any torch form of :mod:`.formats.lama_formats` (Lightning ``best.ckpt``, TorchScript
        ``big-lama.pt``, a plain state dict, ``.safetensors``).

    Raises
    ------
    WeightsError
        The file is missing, unreadable, an ONNX graph, or holds no generator tensors.
    """
    weights = read_lama(path)
    if weights.form == "onnx":
        raise WeightsError(f"{path} is an ONNX graph: it runs as is and holds no torch state dict")
    return weights.state


def load_generator_weights(model: Any, path: str | os.PathLike[str], *, state: dict[str, Any] | None = None) -> None:
    """Load a big-lama ``state_dict`` into ``model`` strictly.

    Raises
    ------
    WeightsError
        Keys are missing or unexpected (both lists are named, up to :data:`KEYS_SHOWN`
        each), or a tensor's shape differs.
    """
    state = read_state_dict(path) if state is None else state
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
        self.form: str | None = None

    @property
    def working_max_side_px(self) -> int:
        return self.config.lama_max_side_px

    @property
    def working_min_side_px(self) -> int:
        return self.config.lama.working_min_side_px

    @classmethod
    def available(cls, config: EnginesConfig) -> tuple[bool, str]:
        if not config.lama_weights:
            return False, "no weights configured (engines.lama_weights is empty)"
        weights = Path(config.lama_weights).expanduser()
        if not weights.is_file():
            return False, f"no weights at {config.lama_weights} (engines.lama_weights)"
        if weights.suffix != ".onnx":
            absent = missing_packages("torch", *(["safetensors"] if weights.suffix == ".safetensors" else []))
            if absent:
                return False, f"package missing: {', '.join(absent)} (pip install '.[neural]')"
        try:
            form = sniff_lama_form(weights)
        except WeightsError as exc:
            return False, str(exc)
        device = resolve_device(config.device)
        if form == "onnx":
            ok, reason = OnnxRuntimeBackend.available(device)
            if not ok:
                return False, reason
            return True, f"{form} at {config.lama_weights}, run by onnxruntime on {device}, {_working(config)}"
        if device == "cuda" and config.device == "cuda":
            from .runtime import cuda_available

            if not cuda_available():
                return False, "no GPU: engines.device is cuda but torch sees no CUDA device"
        try:
            backend, note = resolve_backend(config.lama_backend, device)
        except EngineUnavailable as exc:
            return False, str(exc)
        detail = f"{form} at {config.lama_weights}, run by {backend} on {device}, {_working(config)}"
        return True, detail + (f" (skipped: {note})" if note else "")

    def read_weights(self) -> LamaWeights:
        return read_lama(Path(self.config.lama_weights).expanduser())

    def build_model(self, weights: LamaWeights | None = None) -> Any:
        """The generator with the configured weights loaded, on the CPU, in eval mode; its
        layer sizes are read from the weights unless ``spec`` was given."""
        from .lama_arch import BigLamaGenerator

        weights = weights or self.read_weights()
        if weights.form == "onnx":
            raise WeightsError(f"{weights.path} is an ONNX graph: it has no torch generator to build")
        try:
            spec = self.spec or generator_spec(weights.state)
        except (KeyError, IndexError, ValueError) as exc:
            raise WeightsError(f"{weights.path} does not fit the big-lama generator: no {exc} to read its layer sizes from") from exc
        model = BigLamaGenerator(spec)
        load_generator_weights(model, weights.path, state=weights.state)
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
        weights = self.read_weights()
        self.form = weights.form
        if weights.onnx is not None:
            self.backend = _OnnxLama(weights.path, weights.onnx, device=device)
            self.backend_name, self.device = "onnxruntime", device
            self.loaded = True
            log.info("lama loaded", form=weights.form, backend="onnxruntime", device=device)
            return
        backend_name, _note = resolve_backend(self.config.lama_backend, device)
        model = self.build_model(weights)
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
        log.info("lama loaded", form=weights.form, backend=backend_name, device=device)

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


def _working(config: EnginesConfig) -> str:
    return f"working size: short side >= {config.lama.working_min_side_px} px, long side <= {config.lama_max_side_px} px"


class _OnnxLama(Backend):
    """A downloaded LaMa ONNX graph, fed as its inputs are named and sized.

    A graph with a fixed size (the common exports take 512 x 512) gets the working crop
    mirror-padded to its aspect and resized to that size, and its answer resized back.  An
    output in ``[0, 255]`` (exports that multiply by 255) is told from one in ``[0, 1]`` by
    its range: a picture in ``[0, 1]`` never exceeds 1.5.
    """

    name = "onnxruntime"

    @classmethod
    def available(cls, device: str) -> tuple[bool, str]:
        return OnnxRuntimeBackend.available(device)

    def __init__(self, path: Path, layout: Any, *, device: str) -> None:
        self.runner = OnnxRuntimeBackend(path, device=device)
        self.layout = layout

    def run(self, inputs: Any) -> np.ndarray:
        import cv2

        image = inputs["image"][0].transpose(1, 2, 0)
        hole = inputs["hole"][0, 0]
        height, width = hole.shape
        fixed = (self.layout.height, self.layout.width)
        if None not in fixed:
            side = max(height, width)
            square = np.pad(image, ((0, side - height), (0, side - width), (0, 0)), mode="symmetric")
            square_hole = np.pad(hole, ((0, side - height), (0, side - width)), mode="symmetric")
            target = (fixed[1], fixed[0])
            image = cv2.resize(square, target, interpolation=cv2.INTER_AREA if side > fixed[0] else cv2.INTER_CUBIC)
            hole = (cv2.resize(square_hole, target, interpolation=cv2.INTER_LINEAR) > 0).astype(np.float32)
        feed = {
            self.layout.image_input: np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32),
            self.layout.mask_input: np.ascontiguousarray(hole[None, None], np.float32),
        }
        out = np.asarray(self.runner.session.run([self.layout.output], feed)[0], np.float32)[0]
        if float(out.max()) > 1.5:
            out = out / 255.0
        picture = out.transpose(1, 2, 0)
        if None not in fixed:
            side = max(height, width)
            picture = cv2.resize(picture, (side, side), interpolation=cv2.INTER_CUBIC)[:height, :width]
        return np.ascontiguousarray(picture.transpose(2, 0, 1)[None])

    def close(self) -> None:
        self.runner.close()
