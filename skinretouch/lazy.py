"""Modules imported on first use, so a run pays only for what it touches (issue 17).

``ndi = lazy_module("scipy.ndimage")`` at the top of a module reads like an import, but
scipy.ndimage (a quarter of a second of start-up) is imported only when a function first
uses ``ndi.label`` etc. The classical path of ``process`` never does.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Iterable, Iterator
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

    def __init__(self, names: frozenset[str], packages: frozenset[str] = frozenset()) -> None:
        self.names = names
        self.packages = packages

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.names and fullname not in self.packages:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        if fullname in self.packages:
            if spec.submodule_search_locations is not None:  # a package: its __init__ waits
                spec.loader = _InitOnReadLoader(spec.loader)
        else:
            spec.loader = importlib.util.LazyLoader(_RunsAsIfImportedNow(spec.loader))
        return spec


class _RunsAsIfImportedNow:
    """A loader whose module runs with its parents named as while it was imported (see
    :func:`_parents_naming_their_packages`): a module loaded lazily runs long after, and its
    ``import a.b.c as d`` must still walk to ``a.b.c`` (reading any attribute of a lazy
    module runs it: ``inspect.getmodule``, which torch calls on import, reads every module's
    ``__file__``)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with _parents_naming_their_packages(module.__name__):
            self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_data, is_package, ...: the module's own loader's
        return getattr(self.loader, name)


class _InitOnReadLoader:
    """Loads a package without running its ``__init__``.

    Its ``__path__`` is set, so its submodules import as usual; a name read from it is its
    submodule of that name if it has one (imported then), else the ``__init__`` runs first
    (module ``__getattr__``, PEP 562). Unlike :class:`importlib.util.LazyLoader`, importing a
    submodule does not run the package's ``__init__``: for a package whose ``__init__``
    imports every sibling of the one submodule we use.
    """

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return None  # the default module, with __spec__ and __path__ set

    def exec_module(self, module: ModuleType) -> None:
        loader = self.loader
        lock = threading.RLock()  # the __init__ may read its own names while it runs
        ran = []

        def __getattr__(name: str) -> Any:
            submodule = f"{module.__name__}.{name}"
            if not name.startswith("__") and importlib.util.find_spec(submodule) is not None:
                return importlib.import_module(submodule)
            with lock:
                if not ran:
                    ran.append(True)
                    with _parents_naming_their_packages(module.__name__):
                        loader.exec_module(module)
                    if module.__dict__.get("__getattr__") is __getattr__:
                        del module.__dict__["__getattr__"]
            try:
                return module.__dict__[name]
            except KeyError:
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None

        module.__getattr__ = __getattr__


@contextlib.contextmanager
def _parents_naming_their_packages(name: str) -> Iterator[None]:
    """For the block, each parent package's attribute for the next package on the way to
    ``name`` is that package, as while they were imported: an ``__init__`` may rebind one
    (mediapipe's ``import mediapipe.tasks.python as tasks``), and a deferred ``__init__``'s
    ``import a.b.c as d`` walks those attributes."""
    parts = name.split(".")
    rebound = []
    for depth in range(1, len(parts) - 1):
        parent, child = sys.modules.get(".".join(parts[:depth])), sys.modules.get(".".join(parts[: depth + 1]))
        if parent is not None and child is not None and getattr(parent, parts[depth], None) is not child:
            rebound.append((parent, parts[depth], getattr(parent, parts[depth], None)))
            setattr(parent, parts[depth], child)
    try:
        yield
    finally:
        for parent, attribute, value in reversed(rebound):
            setattr(parent, attribute, value)


_deferring_lock = threading.Lock()


def import_deferring(name: str, deferred: Iterable[str], packages: Iterable[str] = ()) -> ModuleType:
    """Import module ``name`` with the submodules ``deferred`` that it imports but we never use
    loaded lazily (they run only if something reads an attribute of theirs), and the
    ``packages`` loaded without their ``__init__`` (see :class:`_InitOnReadLoader`).

    For packages whose ``__init__`` imports everything: ``mediapipe`` imports its audio tasks
    and drawing helpers (which import matplotlib), half a second of a ``process`` start-up that
    the Face Landmarker never uses, and every vision task beside it.
    """
    with _deferring_lock:
        if name in sys.modules:
            return sys.modules[name]
        finder = DeferringFinder(frozenset(deferred), frozenset(packages))
        sys.meta_path.insert(0, finder)
        try:
            return importlib.import_module(name)
        finally:
            sys.meta_path.remove(finder)
