"""Loading a kernel from numba's on-disk cache without numba's whole typing set-up (issue 17).

Before it loads a cached kernel, numba refreshes its target context: it imports and registers
the implementations of everything numba can compile (numpy's linear algebra, which imports
scipy.linalg, random generators, typed containers, ...). That is most of a second on the
shared machine, paid on every start of ``process`` and every daemon worker, although a cached
kernel is machine code that needs none of it: only the runtime its allocations call into
(``rtsys.initialize``) and the symbols numba installs for it (its helpers when the target
context is made; the hash secret when ``numba.cpython.hashing`` is imported). A kernel that
must really be compiled still gets the full refresh, which numba's compiler does itself first.

If numba's internals are not the ones this was written for, nothing is changed.
"""

from __future__ import annotations

from numba.core import caching

__all__ = ["load_cached_kernels_lightly"]

_PATCHED = "_skinretouch_light_load"


def _load_overload_lightly(self, sig, target_context):
    """``Cache.load_overload`` minus ``target_context.refresh()``: the runtime, and the one
    module of the refresh that installs symbols compiled code may link against (the hash
    secret), whether or not the kernel's own cached environment imports it."""
    import numba.cpython.hashing  # noqa: F401
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)
    return None  # reached when the guard swallows a spurious I/O error, as numba's own


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
