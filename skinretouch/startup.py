"""What a process that retouches photos sets up first, so that it starts and runs lean (issue 17).

- Modules that our dependencies import but never use on our path (numba reads YAML only for a
  config file we do not have; scipy's array-API layer touches ``numpy.f2py`` and
  ``numpy.testing``) load lazily: they run only if something reads them.
- For a one-shot ``process``, glibc's malloc hands blocks of 4 MiB and more straight to
  ``mmap``, so a freed temporary goes back to the system at once instead of staying in the heap
  (by default the threshold grows to 32 MiB after the first big free, and later temporaries of
  a photo's crops then stay resident). 128 KiB saved 7 MB more at 24 MP for 80 % more page faults.
- For a one-shot ``process``, numpy does not ask the kernel for transparent huge pages on its
  large arrays. Where the kernel compacts memory on the fault path for such requests
  (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, a common default), the first
  touch of a fresh whole-photo array stalled: converting a 100 MP photo to floats took 3.4 s
  instead of 0.75 s. Huge pages also made the sparse whole-photo maps dense (one written
  pixel took a 2 MB page): at 100 MP the peak fell 1810 -> 1742 MiB without them.

(Importing numba's modules on a side thread while the main thread decodes and finds faces was
tried: no difference in wall or CPU time measurable on the shared 2 cores, so it is not done.)
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

from .lazy import DeferringFinder

__all__ = ["MMAP_THRESHOLD_BYTES", "exit_now", "prepare_process"]

UNUSED_ON_OUR_PATH = frozenset({"yaml", "numpy.f2py", "numpy.testing"})
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h

_prepared = False


def _set_mmap_threshold(size: int) -> bool:
    """Fix glibc's mmap threshold at ``size`` bytes; whether it could (not glibc: no)."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's, without searching for it
        return bool(libc.mallopt(M_MMAP_THRESHOLD, size))
    except (OSError, AttributeError):
        return False


def _no_huge_pages() -> bool:
    """Stop numpy from asking for transparent huge pages (``madvise``); whether it could."""
    import numpy as np

    core = getattr(np, "_core", None) or getattr(np, "core", None)
    switch = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if switch is None:
        return False
    switch(False)
    return True


def prepare_process(*, fixed_mmap_threshold: bool = False) -> None:
    """Set up a process that retouches photos (once; later calls do nothing).

    ``fixed_mmap_threshold`` for a process that retouches a few photos and ends (``process``):
    a lower peak (6000x4000: 950 -> 907 MB). Not for the daemon's long-lived workers: with the
    threshold fixed, glibc also stops adapting its trim threshold, and a worker's photos/s fell
    by a quarter (1.65 -> 1.27, alternating runs; 128 KiB: 1.62 -> 0.97). It also turns off
    numpy's huge-page requests (see the module doc; not measured on the daemon's workers, so
    not done there).
    """
    global _prepared
    if _prepared:
        return
    _prepared = True
    if not any(isinstance(finder, DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferringFinder(UNUSED_ON_OUR_PATH))
    if fixed_mmap_threshold:
        _set_mmap_threshold(MMAP_THRESHOLD_BYTES)
        _no_huge_pages()


def exit_now(code: int) -> None:
    """End the process with ``code`` after flushing what it printed and logged, without the
    interpreter's teardown (``atexit`` handlers and module clean-up are skipped: call this only
    once every output file is written and closed)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be said
            pass
    os._exit(code)
