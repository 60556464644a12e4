"""LaMa weight files in the forms users download, told apart from the file itself.

Forms (the name is what ``doctor`` and errors print):

``lightning-checkpoint``
    lama's own ``big-lama/models/best.ckpt``: a PyTorch Lightning dict with ``state_dict``
    (keys ``generator.…``, ``discriminator.…``, ``loss_…``), ``hyper_parameters`` and
    training state.  The generator's tensors are kept; nothing else is run or kept.
``torchscript``
    IOPaint's ``big-lama.pt``, made by lama's ``bin/to_jit.py``: a traced wrapper whose
    ``model`` is the training module, so tensors are named ``model.generator.…``.
``state-dict``
    a plain generator ``state_dict`` saved with ``torch.save`` (keys ``model.N.…``, or with a
    ``generator.`` prefix, or under a ``"generator"`` entry).
``safetensors``
    the same tensors as ``.safetensors``.
``onnx``
    a LaMa graph with two NCHW float inputs, the image (3 channels, ``[0, 1]``) and the mask
    (1 channel, 1 = hole), and the picture as first output, in ``[0, 1]`` or ``[0, 255]``
    (the common exports, e.g. Carve/LaMa-ONNX, multiply by 255 and fix the size at 512).
    Run as is by ONNX Runtime; the project's own exports (inputs ``image``/``hole``) too.

The torch forms yield the generator's tensors (prefixes removed) for
:class:`~skinretouch.engines.lama_arch.BigLamaGenerator`, whose layer sizes are read from
them (:func:`generator_spec`), so a smaller generator trained with lama's code loads too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inpaint_base import WeightsError
from .safe_torch import archive_kind, pickle_strings, torch_load_without_code

__all__ = [
    "LAMA_FORMS",
    "LamaOnnxLayout",
    "LamaWeights",
    "generator_spec",
    "read_lama",
    "sniff_lama_form",
]

LAMA_FORMS = ("lightning-checkpoint", "torchscript", "state-dict", "safetensors", "onnx")
EXPECTED = "a big-lama generator (Lightning best.ckpt, TorchScript big-lama.pt, state dict, .safetensors, or ONNX with image + mask inputs)"
# tensor-name prefixes in front of the generator's own names, longest first
GENERATOR_PREFIXES = ("model.generator.", "generator.")
FIRST_LAYER = "model.1.ffc.convl2l.weight"


@dataclass(frozen=True)
class LamaOnnxLayout:
    """How an ONNX LaMa graph is fed: input names, fixed size (None = dynamic)."""

    image_input: str
    mask_input: str
    output: str
    height: int | None
    width: int | None


@dataclass(frozen=True)
class LamaWeights:
    """What a LaMa weights file turned out to be."""

    form: str
    path: Path
    # generator tensors, prefixes removed (torch forms); empty for ONNX
    state: dict[str, Any] = field(default_factory=dict, repr=False)
    onnx: LamaOnnxLayout | None = None


def sniff_lama_form(path: str | os.PathLike[str]) -> str:
    """The form of a LaMa file from its container and key names, without loading tensors
    (cheap enough for ``doctor``).  Raises :class:`WeightsError` when it is none of them."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"no LaMa weights at {path}")
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".safetensors":
        return "safetensors"
    kind = archive_kind(path)
    if kind == "torchscript":
        return "torchscript"
    if kind == "torch-zip":
        strings = pickle_strings(path)
        if "state_dict" in strings and ({"hyper_parameters", "pytorch-lightning_version", "epoch"} & strings):
            return "lightning-checkpoint"
        return "state-dict"
    if kind == "legacy-pickle":
        return "state-dict"
    raise WeightsError(f"{path}: expected {EXPECTED}; found a file that is none of these ({_describe(path)})")


def read_lama(path: str | os.PathLike[str]) -> LamaWeights:
    """Read a LaMa file of any supported form.

    Raises
    ------
    WeightsError
        Missing, unreadable, or of no supported form; the message names the forms expected and
        what was found.
    """
    path = Path(path)
    form = sniff_lama_form(path)
    if form == "onnx":
        return LamaWeights(form, path, onnx=_onnx_layout(path))
    if form == "safetensors":
        from safetensors.torch import load_file

        try:
            raw: Any = load_file(str(path))
        except Exception as exc:
            raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    else:
        raw = torch_load_without_code(path)
    state = _generator_tensors(raw)
    if state is None:
        raise WeightsError(f"{path}: expected {EXPECTED}; found {_describe_object(raw)}")
    if not any(key.startswith("model.") for key in state):
        shown = ", ".join(sorted(state)[:4])
        raise WeightsError(
            f"{path}: expected {EXPECTED} (tensors named model.N..., generator.model.N... or "
            f"model.generator.model.N...); found a {form} with tensors {shown} ..."
        )
    return LamaWeights(form, path, state=state)


def generator_spec(state: Mapping[str, Any]):
    """The :class:`~skinretouch.engines.lama_arch.GeneratorSpec` a generator state dict was
    built with: channels, down-sampling steps, residual blocks and global share, read from
    the tensors' names and shapes (big-lama's own values for the public weights)."""
    from ..lama_arch import GeneratorSpec

    if FIRST_LAYER not in state:
        raise WeightsError(f"not a big-lama generator: no {FIRST_LAYER}")
    ngf, in_channels = (int(n) for n in state[FIRST_LAYER].shape[:2])
    ffc_layers = {int(m.group(1)) for key in state if (m := re.match(r"model\.(\d+)\.ffc\.", key))}
    blocks = {int(m.group(1)) for key in state if (m := re.match(r"model\.(\d+)\.conv1\.ffc\.", key))}
    n_down = len(ffc_layers) - 1
    last_down = f"model.{1 + n_down}.ffc"
    global_out = state.get(f"{last_down}.convl2g.weight")
    local_out = state[f"{last_down}.convl2l.weight"]
    ratio = 0.75
    if global_out is not None:
        ratio = int(global_out.shape[0]) / (int(global_out.shape[0]) + int(local_out.shape[0]))
    out_key = max((k for k in state if re.fullmatch(r"model\.\d+\.weight", k)), key=lambda k: int(k.split(".")[1]))
    bottleneck = ngf * 2**n_down
    return GeneratorSpec(
        in_channels=in_channels,
        out_channels=int(state[out_key].shape[0]),
        ngf=ngf,
        n_downsampling=n_down,
        n_blocks=len(blocks),
        max_features=max(1024, bottleneck),
        global_ratio=ratio,
    )


def _generator_tensors(raw: Any) -> dict[str, Any] | None:
    """Generator tensors of a loaded object, prefixes removed; None when it holds no tensors."""
    import torch

    if not isinstance(raw, Mapping):
        return None
    state: Mapping[str, Any] | None = None
    for wrapper in ("state_dict", "model", "generator"):
        inner = raw.get(wrapper)
        if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
            state = {f"generator.{k}": v for k, v in inner.items()} if wrapper == "generator" else inner
            break
    if state is None:
        if not raw or not all(isinstance(v, torch.Tensor) for v in raw.values()):
            return None
        state = raw
    for prefix in GENERATOR_PREFIXES:
        if any(key.startswith(prefix) for key in state):
            # a training checkpoint or traced wrapper: keep the generator, drop discriminator
            # and loss networks
            return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    return dict(state)


def _onnx_layout(path: Path) -> LamaOnnxLayout:
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:
        raise WeightsError(f"{path} is not a readable ONNX file: {exc}") from exc
    initialisers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initialisers]
    shapes = {value.name: _dims(value) for value in inputs}
    by_channels = {dims[1]: name for name, dims in shapes.items() if len(dims) == 4}
    found = ", ".join(f"{name} {list(dims)}" for name, dims in shapes.items()) or "no inputs"
    if len(inputs) != 2 or 3 not in by_channels or 1 not in by_channels or not graph.output:
        raise WeightsError(
            f"{path}: expected a LaMa ONNX graph with an image input (N, 3, H, W) and a mask input "
            f"(N, 1, H, W); found {found}"
        )
    image_dims = shapes[by_channels[3]]
    height, width = (d if isinstance(d, int) and d > 0 else None for d in image_dims[2:])
    return LamaOnnxLayout(by_channels[3], by_channels[1], graph.output[0].name, height, width)


def _dims(value: Any) -> tuple[Any, ...]:
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value.type.tensor_type.shape.dim)


def _describe(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    return f"{path.stat().st_size} bytes starting {head!r}"


def _describe_object(raw: Any) -> str:
    if isinstance(raw, Mapping):
        keys = ", ".join(str(k) for k in list(raw)[:6])
        return f"a dict without a tensor state dict (keys {keys})"
    return f"a {type(raw).__name__}"
