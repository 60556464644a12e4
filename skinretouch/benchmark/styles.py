"""Planting styles by name, so a bench run (and its split file) can pick one.

Each style is a module with the same interface: ``plant_spots(photo, *, seed, n_spots=None,
kinds=None, n_moles=...) -> (blemished, spots)``, ``oracle_mask(spots, shape, *, dilation_px)``,
``BLEMISH_KINDS`` and ``SPOT_KINDS``. Modules are imported on first use.

- ``classic``: :mod:`.planting`, isolated papules, pustules, dark spots, blackheads (dev style).
- ``clustered``: :mod:`.planting_clustered`, clustered inflamed acne with halos, red and brown
  marks, blackheads, moles of 2-10 px (test style: never tuned on).
- ``marks``: :mod:`.planting_marks`, flat soft red and brown post-acne marks, moles of 1.5-9 px
  (a second dev style, run with ``--style marks``).
"""

from __future__ import annotations

import contextlib
import importlib
from types import ModuleType

__all__ = ["PLANTING_STYLES", "mole_radii", "planting_style"]

PLANTING_STYLES = {
    "classic": "skinretouch.benchmark.planting",
    "clustered": "skinretouch.benchmark.planting_clustered",
    "marks": "skinretouch.benchmark.planting_marks",
}


def planting_style(name: str) -> ModuleType:
    """The planting module registered under ``name``."""
    try:
        return importlib.import_module(PLANTING_STYLES[name])
    except KeyError:
        raise ValueError(f"unknown planting style {name!r}; known: {sorted(PLANTING_STYLES)}") from None


@contextlib.contextmanager
def mole_radii(style: ModuleType, radii: tuple[float, float]):
    """Plant ``style``'s moles with footprint radii in ``radii`` (px at face scale) inside the
    block; the style's own range is put back after it. For styles with a ``RADIUS_PX`` table."""
    saved = style.RADIUS_PX["mole"]
    try:
        style.RADIUS_PX["mole"] = tuple(radii)
        yield
    finally:
        style.RADIUS_PX["mole"] = saved
