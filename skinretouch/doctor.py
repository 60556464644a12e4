"""``skinretouch doctor``: what can run here, and for what cannot, why not."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config

__all__ = ["Check", "collect_checks", "run_doctor"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer."""

    group: str
    name: str
    available: bool
    detail: str


def collect_checks(config: Config) -> list[Check]:
    """Every engine and backend with its state; never raises."""
    probes: list[Callable[[Config], Check]] = [
        _detector_classical,
        _face_cascades,
        _kernels_numba,
        _patchmatch,
    ]
    checks = []
    for probe in probes:
        try:
            checks.append(probe(config))
        except Exception as exc:  # a probe must not hide the others
            checks.append(Check("?", probe.__name__.strip("_"), False, f"probe failed: {exc}"))
    try:
        checks.extend(_neural_rows(config))
    except Exception as exc:
        checks.append(Check("inpaint", "neural", False, f"probe failed: {exc}"))
    return checks


def run_doctor(config: Config) -> int:
    checks = collect_checks(config)
    width = max(len(f"{c.group}/{c.name}") for c in checks)
    for check in checks:
        state = "available  " if check.available else "unavailable"
        print(f"{check.group + '/' + check.name:<{width}}  {state}  {check.detail}")
    default_ok = all(c.available for c in checks if c.group in ("detector", "removal"))
    print()
    print("default path (classical, CPU, no weights): " + ("ready" if default_ok else "NOT READY"))
    return 0 if default_ok else 1


def _detector_classical(config: Config) -> Check:
    importlib.import_module("skinretouch.engines.classical_detector")
    return Check("detector", "classical", True, "no weights needed")


def _face_cascades(config: Config) -> Check:
    import cv2

    folder = Path(cv2.data.haarcascades)
    cascade = folder / "haarcascade_frontalface_default.xml"
    if cascade.exists():
        return Check("detector", "face-haar", True, f"OpenCV {cv2.__version__} cascades in {folder}")
    return Check(
        "detector",
        "face-haar",
        False,
        f"OpenCV {cv2.__version__} ships no Haar cascades; faces fall back to the skin-colour map",
    )


def _kernels_numba(config: Config) -> Check:
    import numba

    cache = os.environ.get("NUMBA_CACHE_DIR", "(next to the package; set NUMBA_CACHE_DIR for a service)")
    return Check("removal", "freqsplit-numba", True, f"numba {numba.__version__}, cache {cache}")


def _patchmatch(config: Config) -> Check:
    import patchmatch.patch_match  # noqa: F401  (loads the prebuilt library)

    return Check("removal", "patchmatch+poisson", True, "pypatchmatch prebuilt library loaded")


def _neural_rows(config: Config) -> list[Check]:
    from .engines.manager import doctor_rows

    return [Check(group, name, ok, reason) for group, name, ok, reason in doctor_rows(config.engines)]


if __name__ == "__main__":
    sys.exit(run_doctor(Config()))
