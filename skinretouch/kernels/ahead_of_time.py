"""Kernels that run without importing numba: compiled ahead of time, numba's JIT as the fallback
(issue 17).

Every kernel is written for numba and decorated with this module's :func:`njit`, which
returns a :class:`Kernel`. Importing numba costs a ``process`` about a fifth of a second, and
loading its cached kernels and initialising its runtime as much again, on every start,
although the kernels are machine code that needs neither numba's typing nor its compiler.

``skinretouch compile`` (:func:`build_ahead_of_time`) compiles every signature the pipeline
calls into one extension module with numba's ahead-of-time compiler, beside numba's own
cache (``NUMBA_CACHE_DIR``, or this folder's ``__pycache__``). Its name carries a fingerprint
of the kernels' sources, numba, numpy, Python and the CPU, so a module built for other
sources or another machine is never loaded. A :class:`Kernel` called with arguments of a
compiled signature runs that compiled function; any other call (no module built, a type
the pipeline did not use) imports numba and runs the kernel as numba's JIT always did, so
the result never depends on which path ran.

The compiled functions' argument conversion trusts its signature (an array of another
layout is read as if it had the compiled one), so a call is matched on every property numba
itself dispatches on: dtype, dimensions, layout and writability.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import platform
import sys
import sysconfig
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Kernel", "argument_type", "build_ahead_of_time", "compiled_library_path", "fingerprint", "jit_only",
    "library_folder", "load_library", "module_name", "njit", "numba_type_key",
]

LIBRARY_PREFIX = "skinretouch_kernels_"
FOLDER = Path(__file__).resolve().parent


class _Registry:
    """The kernels defined so far, and what was loaded for them (one per process)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # the pipeline calls kernels from several threads
        self.kernels: list[Kernel] = []
        self.jit_ready = False
        self.library: dict[str, dict[tuple, Callable]] | None = None  # None: not looked for yet
        self.cache_stamp: str | None = None  # the sources' fingerprint numba's cache is stamped with


_REGISTRY = _Registry()


def njit(**options: Any) -> Callable[[Callable], Kernel]:
    """numba's ``njit(**options)``, returning a :class:`Kernel` that needs numba only when
    it has no ahead-of-time compiled function for a call."""

    def decorate(function: Callable) -> Kernel:
        return Kernel(function, options)

    return decorate


class Kernel:
    """A numba kernel, called through its ahead-of-time compiled function for the call's
    argument types when there is one, through numba's dispatcher otherwise.

    Inside other kernels numba types it as its dispatcher (see :func:`_jit_all`), so kernels
    call each other as numba functions always did. Attributes it does not define
    (``signatures``, ``overloads``, ...) are the dispatcher's.
    """

    def __init__(self, function: Callable, options: dict[str, Any]) -> None:
        self.py_func = function
        self.options = dict(options)
        self.key = f"{function.__module__}.{function.__qualname__}"
        self.__name__ = function.__name__
        self.__qualname__ = function.__qualname__
        self.__module__ = function.__module__
        self.__doc__ = function.__doc__
        self.__wrapped__ = function
        self._signature = inspect.signature(function)
        self._arity = len(self._signature.parameters)
        self._dispatcher = None
        self._compiled: dict[tuple, Callable] | None = None
        _REGISTRY.kernels.append(self)
        if _REGISTRY.jit_ready:
            self._make_dispatcher()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._compiled_functions()
        if compiled:
            arguments = args
            if kwargs or len(args) != self._arity:
                bound = self._signature.bind(*args, **kwargs)
                bound.apply_defaults()
                arguments = bound.args
            function = compiled.get(tuple(map(argument_type, arguments)))
            if function is not None:
                return function(*arguments)
        # As called (defaults left out): the signature numba compiled and cached for this call.
        return self.dispatcher(*args, **kwargs)

    @property
    def dispatcher(self):
        """numba's dispatcher for this kernel (importing numba the first time)."""
        if self._dispatcher is None:
            _jit_all()
        return self._dispatcher

    @property
    def compiled_ahead_of_time(self) -> bool:
        """Whether a compiled function for at least one signature was loaded."""
        return bool(self._compiled_functions())

    def _compiled_functions(self) -> dict[tuple, Callable]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = _library().get(self.key, {})
        return compiled

    def _make_dispatcher(self) -> None:
        from numba import njit as numba_njit

        self._dispatcher = numba_njit(**self.options)(self.py_func)
        _stamp_cache_with_sources(self._dispatcher)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_dispatcher", "_compiled", "_signature", "_arity"):
            raise AttributeError(name)
        return getattr(self.dispatcher, name)

    def __repr__(self) -> str:
        return f"<kernel {self.key}>"


def _jit_all() -> None:
    """Import numba, make every kernel's dispatcher, and have numba type a :class:`Kernel` met
    inside another kernel as that dispatcher."""
    with _REGISTRY.lock:
        if not _REGISTRY.jit_ready:
            _make_dispatchers()


def _make_dispatchers() -> None:
    from numba.core import types
    from numba.extending import typeof_impl

    from ._cache_loading import load_cached_kernels_lightly

    load_cached_kernels_lightly()
    _REGISTRY.cache_stamp = fingerprint()

    @typeof_impl.register(Kernel)
    def _typeof_kernel(kernel: Kernel, context: Any) -> types.Dispatcher:
        return types.Dispatcher(kernel.dispatcher)

    for kernel in _REGISTRY.kernels:
        kernel._make_dispatcher()
    _REGISTRY.jit_ready = True


def _stamp_cache_with_sources(dispatcher: Any) -> None:
    """Make ``dispatcher``'s cached machine code valid for the kernels' sources as they are now,
    not only for its own file.

    numba keeps a cached kernel while the file that defines it is unchanged, and that code
    holds the kernels it calls as they were compiled then: after an edit to ``removal.py``,
    the batch kernel of the unchanged ``removal_batch.py`` still ran the old fill, from the
    cache and in the module ``skinretouch compile`` then built from it (which the fingerprint
    called current), while a direct call ran the new one. Its cache index is stamped with
    :func:`fingerprint` too, so an edit to any kernel recompiles them all. If numba's cache is
    not the one this was written for, nothing is changed.
    """
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = (cache_file._source_stamp, _REGISTRY.cache_stamp)


def argument_type(value: Any) -> Any:
    """What numba dispatches ``value`` on, as a hashable key (None if no compiled function
    can take it)."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        layout = "C" if flags.c_contiguous else ("F" if flags.f_contiguous else "A")
        return (value.dtype.str, value.ndim, layout, flags.writeable)  # numba takes any array as aligned
    kind = type(value)
    if kind is bool:
        return "|b1"
    if kind is int:
        return "<i8" if -(2**63) <= value < 2**63 else None
    if kind is float:
        return "<f8"
    if isinstance(value, np.generic):
        return value.dtype.str if value.dtype.kind in "biuf" else None
    if kind is tuple:
        return ("tuple", *map(argument_type, value))
    if value is None:
        return "none"
    return None


def numba_type_key(numba_type: Any) -> Any:
    """:func:`argument_type`'s key for a numba type of a compiled signature (None if the
    compiled function could not be matched to Python arguments safely)."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(numba_type, types.Array):
        if not isinstance(numba_type.dtype, types.Boolean | types.Integer | types.Float) or not numba_type.aligned:
            return None
        return (as_dtype(numba_type.dtype).str, numba_type.ndim, numba_type.layout, numba_type.mutable)
    if isinstance(numba_type, types.Literal):
        return None
    if isinstance(numba_type, types.Boolean | types.Integer | types.Float):
        return as_dtype(numba_type).str
    if isinstance(numba_type, types.BaseTuple):
        keys = [numba_type_key(item) for item in numba_type.types]
        return None if None in keys else ("tuple", *keys)
    if isinstance(numba_type, types.NoneType):
        return "none"
    return None


def _cpu_identity() -> str:
    """The CPU the compiled code may use instructions of (its model and feature flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    lines = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))]
    return platform.machine() + "\n".join(sorted(set(lines)))


def fingerprint() -> str:
    """What the compiled module depends on: the kernels' sources, numba, numpy, Python, CPU."""
    digest = hashlib.sha256()
    for path in sorted(FOLDER.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    spec = importlib.util.find_spec("numba")
    numba_version = Path(spec.origin).with_name("_version.py") if spec and spec.origin else None
    if numba_version is not None and numba_version.is_file():
        digest.update(numba_version.read_bytes())
    digest.update(f"{np.__version__}\0{sys.version}\0{_cpu_identity()}".encode())
    return digest.hexdigest()[:20]


def library_folder(numba_cache: str | None = None) -> Path:
    """Beside numba's cache: in ``numba_cache`` (default ``NUMBA_CACHE_DIR``; the service sets
    it) when there is one, else this folder's ``__pycache__`` (where numba caches a writable
    checkout's kernels)."""
    cache = os.environ.get("NUMBA_CACHE_DIR", "") if numba_cache is None else numba_cache
    return Path(cache) / "skinretouch" if cache else FOLDER / "__pycache__"


def compiled_library_path() -> Path:
    """Where this source's compiled module is, or would be built."""
    return library_folder() / (LIBRARY_PREFIX + fingerprint() + sysconfig.get_config_var("EXT_SUFFIX"))


def module_name(library: Path) -> str:
    """The module's import name: its file name without the extension suffix."""
    return library.name.split(".", 1)[0]


def _table_path(library: Path) -> Path:
    return library.with_name(module_name(library) + ".json")


def _as_key(item: Any) -> Any:
    return tuple(_as_key(part) for part in item) if isinstance(item, list) else item


def _library() -> dict[str, dict[tuple, Callable]]:
    with _REGISTRY.lock:
        if _REGISTRY.library is None:
            _REGISTRY.library = load_library(compiled_library_path())
        return _REGISTRY.library


def load_library(path: Path) -> dict[str, dict[tuple, Callable]]:
    """Each kernel's compiled functions by argument types; empty when none were built (or the
    module cannot be loaded: the JIT then runs everything)."""
    table = _table_path(path)
    if not (path.is_file() and table.is_file()):
        return {}
    try:
        entries = json.loads(table.read_text())
        spec = importlib.util.spec_from_file_location(module_name(path), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {
            key: {tuple(_as_key(types)): getattr(module, export) for types, export in signatures}
            for key, signatures in entries.items()
        }
    except (ImportError, OSError, ValueError, AttributeError, TypeError):
        return {}


def _trampoline(dispatcher: Any, arity: int) -> Callable:
    """A function of ``arity`` arguments that calls ``dispatcher``: numba's ahead-of-time
    compiler compiles a function's own body with default flags, so the kernel's (fastmath)
    stay with it by calling it from there."""
    names = ", ".join(f"a{i}" for i in range(arity))
    namespace = {"kernel": dispatcher}
    exec(f"def trampoline({names}):\n    return kernel({names})\n", namespace)  # noqa: S102
    return namespace["trampoline"]


def _exports() -> tuple[list[tuple[str, Any, Callable]], dict[str, list]]:
    """Every signature numba has compiled in this process, as (export name, signature,
    function), and the table that maps them back to kernels and argument types."""
    from numba import typeof
    from numba.core import types

    exports, table = [], {}
    for kernel in _REGISTRY.kernels:
        for signature in kernel.dispatcher.nopython_signatures:
            # An argument left to its default was compiled as "omitted"; a call matched here
            # has its defaults filled in (Kernel.__call__), so it is compiled as their type.
            arguments = [typeof(t.value) if isinstance(t, types.Omitted) else t for t in signature.args]
            keys = [numba_type_key(t) for t in arguments]
            if None in keys:
                continue
            # Named by kernel and types, so a table and a module from different builds can
            # only disagree by a missing name, never by a function of another signature.
            name = "k_" + hashlib.sha256(repr((kernel.key, keys)).encode()).hexdigest()[:16]
            exports.append((name, signature.return_type(*arguments), _trampoline(kernel.dispatcher, len(arguments))))
            table.setdefault(kernel.key, []).append([keys, name])
    return exports, table


def jit_only() -> None:
    """Run every kernel through numba's JIT from now on in this process, as if no module had
    been built (so that running the pipeline compiles, and lists, every signature it uses)."""
    _forget_loaded(library={})


def _forget_loaded(*, library: dict[str, dict[tuple, Callable]] | None) -> None:
    """Every kernel looks its compiled functions up again, in ``library`` (None: loaded anew
    from the module on the next call)."""
    _REGISTRY.library = library
    for kernel in _REGISTRY.kernels:
        kernel._compiled = None


def build_ahead_of_time(progress: Callable[[str], None] | None = None) -> Path:
    """Compile every kernel signature numba has compiled in this process (run the pipeline
    first: :func:`skinretouch.precompile.compile_kernels`) into the extension module
    :func:`load_library` loads; returns its path. The module releases the GIL as the
    kernels do (the daemon runs photos on threads)."""
    import tempfile  # only a build needs it; not every photo's start-up

    import llvmlite.binding as llvm
    import numba.pycc.compiler as pycc_compiler
    from numba.pycc import CC

    exports, table = _exports()
    target = compiled_library_path()
    name = module_name(target)
    if progress is not None:
        progress(f"compiling the {len(exports)} kernel signatures it called ahead of time into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        compiler = CC(name)
        compiler.output_dir = scratch
        compiler.target_cpu = llvm.get_host_cpu_name()
        compiler.verbose = False
        for export, signature, function in exports:
            compiler.export(export, signature)(function)
        original_flags = pycc_compiler.Flags

        class ReleasingGil(original_flags):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.release_gil = True

        pycc_compiler.Flags = ReleasingGil
        try:
            compiler.compile()
        finally:
            pycc_compiler.Flags = original_flags
        built = next(Path(scratch).glob(name + "*"))
        os.replace(built, target)
        Path(scratch, "table.json").write_text(json.dumps(table))
        os.replace(Path(scratch, "table.json"), _table_path(target))
    for older in target.parent.glob(LIBRARY_PREFIX + "*"):  # built for other sources: never loaded again
        if not older.name.startswith(name):
            older.unlink(missing_ok=True)
    _forget_loaded(library=None)
    return target
