"""Modules imported on first use, so a run pays only for what it touches (issue 17).

``ndi = lazy_module("scipy.ndimage")`` at the top of a module reads like an import, but
scipy.ndimage (a quarter of a second of start-up) is imported only when a function first
uses ``ndi.label`` etc. The classical path of ``process`` never does.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable
from types import ModuleType
from typing import Any

__all__ = ["DeferringFinder", "import_deferring", "lazy_module"]


class _LazyModule:
    """Stands in for a module; imports it on the first attribute read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not yet imported"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> Any:
    """A stand-in for module ``name`` that imports it when first used."""
    return _LazyModule(name)


class DeferringFinder:
    """Finds the named modules as usual but loads them lazily (:class:`importlib.util.LazyLoader`):
    the module object exists, and its code runs on the first attribute read.

    A meta path finder needs only ``find_spec``; not deriving from ``importlib.abc``'s base
    class spares every start-up the import of ``importlib.abc`` (it pulls in
    ``importlib.resources`` and ``tempfile``).
    """

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


_deferring_lock = threading.Lock()


def import_deferring(name: str, deferred: Iterable[str]) -> ModuleType:
    """Import module ``name`` with the submodules ``deferred`` that it imports but we never use
    loaded lazily: they run only if something reads an attribute of theirs.

    For packages whose ``__init__`` imports everything: ``mediapipe`` imports its audio tasks
    and drawing helpers (which import matplotlib), half a second of a ``process`` start-up that
    the Face Landmarker never uses.
    """
    with _deferring_lock:
        if name in sys.modules:
            return sys.modules[name]
        finder = DeferringFinder(frozenset(deferred))
        sys.meta_path.insert(0, finder)
        try:
            return importlib.import_module(name)
        finally:
            sys.meta_path.remove(finder)
