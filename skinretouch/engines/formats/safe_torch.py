"""Reading torch files without running the code a pickle may carry.

``torch.load(weights_only=True)`` is tried first.  Training checkpoints (PyTorch Lightning's
``best.ckpt``) also pickle their config (omegaconf objects, argparse namespaces), which that
refuses; they are then read by an unpickler that resolves only torch's tensor-rebuilding
globals and turns every other object into an inert placeholder: no class from the file is
imported or called, so the tensors come out and nothing else runs.

TorchScript archives are deserialised by ``torch.jit.load`` (graph read, never run): their
tensors are all this project uses.
"""

from __future__ import annotations

import functools
import pickle
import types
import warnings
import zipfile
from pathlib import Path
from typing import Any

from ..inpaint_base import WeightsError

__all__ = ["archive_kind", "pickle_strings", "torch_load_without_code", "torchscript_state_dict"]


def archive_kind(path: Path) -> str:
    """``"torchscript"``, ``"torch-zip"`` (``torch.save``), ``"legacy-pickle"`` or ``"other"``,
    from the file's container alone (nothing is unpickled)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(name.endswith("/constants.pkl") for name in names):
            return "torchscript"
        if any(name.endswith("/data.pkl") for name in names):
            return "torch-zip"
        return "other"
    with open(path, "rb") as handle:
        head = handle.read(2)
    return "legacy-pickle" if head[:1] == b"\x80" else "other"


def pickle_strings(path: Path, *, limit: int = 4096) -> set[str]:
    """String constants of a ``torch.save`` zip's ``data.pkl`` (its dict keys among them),
    read by disassembling the pickle, not running it; empty for other containers."""
    if archive_kind(path) != "torch-zip":
        return set()
    import pickletools  # 4.5 ms, which a photo on the classical route need not pay

    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
        data = archive.read(name)
    found: set[str] = set()
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            if isinstance(arg, str) and "UNICODE" in opcode.name:
                found.add(arg)
                if len(found) >= limit:
                    break
    except Exception:  # noqa: BLE001 - a damaged pickle simply yields what was read
        pass
    return found


def torch_load_without_code(path: Path) -> Any:
    """The object a ``torch.save`` file holds, its non-tensor objects made inert."""
    import torch

    if archive_kind(path) == "torchscript":
        return torchscript_state_dict(path)
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


def torchscript_state_dict(path: Path) -> dict[str, Any]:
    """Tensors of a TorchScript archive; its graph is deserialised, never run."""
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
