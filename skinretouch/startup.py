"""What a process that retouches photos sets up first, so that it starts and runs lean (issue 17).

- Modules that our dependencies import but never use on our path (numba reads YAML only for a
  config file we do not have; scipy's array-API layer touches ``numpy.f2py`` and
  ``numpy.testing``) load lazily: they run only if something reads them.
- For a one-shot ``process``, glibc's malloc is tuned (:data:`MALLOC_TUNING`) to reuse the
  memory of freed temporaries instead of handing it back and faulting it in anew: blocks under
  16 MiB come from the heap, which grows 64 MiB at a time and gives back only 256 MiB or more.
  Before, blocks of 4 MiB and more went straight to ``mmap``: each photo's crops and
  temporaries were mapped, zeroed and unmapped again, 2.1 million page faults and 3.6 s of
  system time at 100 MP (0.45 million, 0.8 s at 24 MP). Tuned: 0.76 million faults, 1.35 s
  (0.15 million, 0.4 s), for a peak of 1766 MiB instead of 1694 at 100 MP (24 MP: 696 vs
  650 MiB). Whole-photo masks of 24 MP and more stay above the threshold, so ``np.zeros``
  still maps them lazily and their empty pages take no memory (with 64 MiB they came from
  the heap, zeroed by hand: a 46 MB mask's sparse copy took 10 MB instead of nothing).
- For a one-shot ``process``, numpy does not ask the kernel for transparent huge pages on its
  large arrays. Where the kernel compacts memory on the fault path for such requests
  (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, a common default), the first
  touch of a fresh whole-photo array stalled: converting a 100 MP photo to floats took 3.4 s
  instead of 0.75 s. Huge pages also made the sparse whole-photo maps dense (one written
  pixel took a 2 MB page): at 100 MP the peak fell 1810 -> 1742 MiB without them.
- OpenBLAS (numpy's, and OpenCV's own copy) runs on the calling thread only
  (``OPENBLAS_NUM_THREADS=1`` unless the environment already says otherwise). Our matrices are
  tiny (a colour model's 3 x 3 covariance over a face's pixels, 2 x 2 shapes); after each call
  OpenBLAS's worker thread busy-waits for the next one, and on two cores it took a core from
  the face landmarker and the region threads: a tenth of a 2048 x 2048 ``process``'s CPU time
  was that spin (CPU 0.72-0.78 -> 0.56-0.63 s, wall 3-31 ms less, in four runs of the speed
  bench beside the tree before).

(Importing numba's modules on a side thread while the main thread decodes and finds faces was
tried: no difference in wall or CPU time measurable on the shared 2 cores, so it is not done.)
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

from .lazy import DeferringFinder

__all__ = ["BLAS_THREADS", "MALLOC_TUNING", "exit_now", "prepare_process"]

UNUSED_ON_OUR_PATH = frozenset({"yaml", "numpy.f2py", "numpy.testing"})
MIB = 1024 * 1024
# mallopt's parameter numbers in glibc's malloc.h, and the values a one-shot process sets.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
MALLOC_TUNING = {M_MMAP_THRESHOLD: 16 * MIB, M_TRIM_THRESHOLD: 256 * MIB, M_TOP_PAD: 64 * MIB}
# Read once, when an OpenBLAS library loads (numpy's import, cv2's).
BLAS_THREADS = {"OPENBLAS_NUM_THREADS": "1"}

_prepared = False


def _tune_malloc(settings: dict[int, int]) -> bool:
    """Set glibc's malloc parameters (``mallopt``); whether every one was taken (not glibc: no)."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's, without searching for it
        return all([bool(libc.mallopt(parameter, value)) for parameter, value in settings.items()])
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


def prepare_process(*, one_shot: bool = False) -> None:
    """Set up a process that retouches photos (once; later calls do nothing), before it
    imports numpy: deferred imports, and OpenBLAS on one thread (see the module doc).

    ``one_shot`` for a process that retouches a few photos and ends (``process``): malloc
    tuned and numpy's huge-page requests off (see the module doc). Not for the daemon's
    long-lived workers, whose throughput was measured with glibc's own adaptive thresholds
    (an earlier fixed 4 MiB threshold cut a worker's photos/s by a quarter, 1.65 -> 1.27).
    """
    global _prepared
    if _prepared:
        return
    _prepared = True
    for name, value in BLAS_THREADS.items():
        os.environ.setdefault(name, value)
    if not any(isinstance(finder, DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferringFinder(UNUSED_ON_OUR_PATH))
    if one_shot:
        _tune_malloc(MALLOC_TUNING)
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
