"""Compile the numba kernels before the first photo needs them (issue 17), in two forms.

numba compiles a kernel the first time it is called and caches the machine code
(``NUMBA_CACHE_DIR``, keyed by the kernels' source). Left to the first photo, that is about
90 s on two cores: a user's first ``skinretouch process``, and every daemon start after an
install or an upgrade, waited that long for one photo. ``skinretouch compile`` (run by
``systemd/install.sh`` as the service's user, into the service's cache) pays it once, ahead.
It then compiles every signature the pipeline called into one extension module
(:mod:`skinretouch.kernels.ahead_of_time`), which a photo runs without importing numba.

:func:`compile_kernels` runs the real pipeline on small synthetic photos built to reach
every kernel a photo can: 8- and 16-bit stored photos and float arrays (the Python API);
detection on skin with blemish-like marks (so candidates are measured, verified and
outlined); the removal of small spots, one large hole (tiled donors, the multigrid tone
solver) and a cluster. What they compile is what a real photo then loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .config import Config
from .kernels.ahead_of_time import build_ahead_of_time, jit_only
from .kernels.removal_batch import batch_fill_compiled
from .pipeline import OwnedPhoto, Retoucher

__all__ = [
    "FIRST_RUN_NOTICE", "cache_dir", "cached_kernel_count", "compile_kernels", "kernels_compiled", "synthetic_skin",
]

SIDE_PX = 320


def cache_dir() -> Path | None:
    """numba's cache folder for this process (``NUMBA_CACHE_DIR``), None if it caches beside
    the sources."""
    from numba.core import config as numba_config

    folder = getattr(numba_config, "CACHE_DIR", "")
    return Path(folder) if folder else None


def cached_kernel_count(folder: Path | None = None) -> int:
    """How many compiled kernel signatures (numba's ``.nbc`` files) the cache holds."""
    if folder is None:
        folder = cache_dir() or Path(__file__).resolve().parent / "kernels" / "__pycache__"
    return sum(1 for _ in folder.rglob("*.nbc")) if folder.is_dir() else 0


FIRST_RUN_NOTICE = (
    "skinretouch: compiling the image kernels first (once per install or upgrade: about 1.5 minutes "
    "on 2 cores; `skinretouch compile` does it ahead of time)"
)


def kernels_compiled() -> bool:
    """Whether the kernels are compiled for this source: the removal's batch fill stands for
    them (every photo runs it, and it is the longest to compile)."""
    return batch_fill_compiled()


def synthetic_skin(side: int = SIDE_PX, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A skin-coloured float photo with grain and blemish-like marks (red bumps, brown and
    black dots, a dark mole), and two masks on it: small spots, and a large hole beside a
    cluster of spots.

    Returns ``(rgb, small_mask, large_mask)``: ``(side, side, 3)`` float32 in [0, 1] and two
    ``(side, side)`` bool masks.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side].astype(np.float32)
    skin = np.array([0.86, 0.66, 0.56], np.float32)
    rgb = skin + 0.012 * rng.standard_normal((side, side, 3)).astype(np.float32)
    rgb += 0.03 * np.sin(xx / 23.0)[..., None] * np.sin(yy / 31.0)[..., None]  # uneven light
    marks = (  # centre x, centre y, radius px, colour change
        (60, 60, 5.0, (0.02, -0.12, -0.10)),   # red bump
        (110, 70, 4.0, (0.03, -0.14, -0.11)),  # red bump
        (170, 60, 3.5, (-0.16, -0.20, -0.20)),  # brown dot
        (230, 80, 2.0, (-0.55, -0.45, -0.40)),  # black dot
        (80, 200, 6.0, (-0.40, -0.40, -0.38)),  # dark mole
        (150, 160, 4.5, (-0.10, -0.14, -0.16)),  # brown mark
    )
    small = np.zeros((side, side), bool)
    for x, y, r, change in marks:
        d2 = (xx - x) ** 2 + (yy - y) ** 2
        weight = np.exp(-d2 / (2.0 * (0.7 * r) ** 2))[..., None]
        rgb += weight * np.array(change, np.float32)
        small |= d2 <= (r + 2.0) ** 2
    large = ((yy - 240.0) / 48.0) ** 2 + ((xx - 230.0) / 58.0) ** 2 <= 1.0
    for x, y in ((150, 250), (140, 280), (160, 290)):  # a cluster touching the hole
        large |= (xx - x) ** 2 + (yy - y) ** 2 <= 49
    return np.clip(rgb, 0.0, 1.0).astype(np.float32), small, large


def compile_kernels(config: Config | None = None, *, say: Callable[[str], None] = print) -> tuple[int, float]:
    """Run the pipeline on synthetic photos so every kernel it uses is compiled and cached,
    then compile the signatures it called into one module ahead of time
    (:func:`skinretouch.kernels.ahead_of_time.build_ahead_of_time`), which ``process`` and
    the daemon load without importing numba.

    Returns ``(kernel signatures in numba's cache, seconds)``; ``say`` gets one line per step.
    A failed ahead-of-time build (no C compiler, say) is reported through ``say`` and leaves
    the kernels to numba's JIT and its cache.
    """
    started = time.perf_counter()
    jit_only()  # so that every signature the pipeline calls is compiled by numba, and listed
    _run_pipeline(config, say)
    try:
        build_ahead_of_time(say)
    except Exception as exc:  # the JIT's cache still serves every photo, only later
        say(f"ahead-of-time compilation failed, the kernels run through numba's JIT: {exc}")
    return cached_kernel_count(), time.perf_counter() - started


def _run_pipeline(config: Config | None, say: Callable[[str], None]) -> None:
    rgb, small, large = synthetic_skin()
    with Retoucher(config or Config()) as retoucher:
        for bit_depth in (8, 16):
            say(f"{bit_depth}-bit photos: detection and removal")
            retoucher.retouch(OwnedPhoto(rgb.copy(), bit_depth))
            retoucher.retouch(OwnedPhoto(rgb.copy(), bit_depth), mask=small)
            retoucher.retouch(OwnedPhoto(rgb.copy(), bit_depth), mask=large)
        say("float photos (the Python API)")
        retoucher.retouch(rgb.copy())
        retoucher.retouch(rgb.copy(), mask=small | large)
