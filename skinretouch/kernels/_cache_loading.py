"""Loading a kernel from numba's on-disk cache without numba's whole typing set-up (issue 17).

Before it loads a cached kernel, numba refreshes its target context: it imports and registers
the implementations of everything numba can compile (numpy's linear algebra, which imports
scipy.linalg, random generators, typed containers, ...). That is most of a second on the
shared machine, paid on every start of ``process`` and every daemon worker, although a cached
kernel is machine code that needs none of it: only the runtime its allocations call into
(``rtsys.initialize``) and the symbols numba installs for it (its helpers when the target
context is made; the hash secret when ``numba.cpython.hashing`` is imported). A kernel that
must really be compiled still gets the full refresh, which numba's compiler does itself first.

The first cached kernel that uses a numpy function also imports ``numba.np.arraymath``, which
asks whether BLAS is there by importing ``scipy.linalg`` (a tenth to a third of a second, most
of it scipy's array-API layer). That import is made with the question answered from scipy being
installed; the kernels call no BLAS or LAPACK routine (``tone`` solves its 6x6 system itself),
and a kernel compiled later that does still finds scipy's routines, which numba resolves when
they are first called.

If numba's internals are not the ones this was written for, nothing is changed.
"""

from __future__ import annotations

import importlib.util
import sys

from numba.core import caching

__all__ = ["load_cached_kernels_lightly"]

_PATCHED = "_skinretouch_light_load"


def _load_overload_lightly(self, sig, target_context):
    """``Cache.load_overload`` minus ``target_context.refresh()``: the runtime, and the one
    module of the refresh that installs symbols compiled code may link against (the hash
    secret), whether or not the kernel's own cached environment imports it."""
    import numba.cpython.hashing  # noqa: F401
    from numba.core.runtime import rtsys

    _import_arraymath_without_blas_probe()
    rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    return None  # reached when the guard swallows a spurious I/O error, as numba's own


def _blas_installed() -> None:
    """numba's ``ensure_blas`` answered without importing scipy.linalg: is scipy there."""
    if importlib.util.find_spec("scipy") is None:
        raise ImportError("scipy 0.16+ is required for linear algebra")


def _import_arraymath_without_blas_probe() -> None:
    """Import ``numba.np.arraymath`` with its import-time BLAS probe answered cheaply."""
    if "numba.np.arraymath" in sys.modules:
        return
    from numba.np import linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:
        return
    linalg.ensure_blas = _blas_installed
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        linalg.ensure_blas = probe


def load_cached_kernels_lightly() -> bool:
    """Make numba load cached kernels without refreshing its registries; whether it does."""
    cache = caching.Cache
    if getattr(cache.load_overload, _PATCHED, False):
        return True
    if not (hasattr(cache, "_load_overload") and hasattr(cache, "_guard_against_spurious_io_errors")):
        return False
    setattr(_load_overload_lightly, _PATCHED, True)
    cache.load_overload = _load_overload_lightly
    return True
