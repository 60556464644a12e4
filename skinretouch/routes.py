"""One vocabulary for how a region is repaired, shared by regions, the engine manager,
the pipeline and the report.

need
    What a region asks for, from its size and flags (:mod:`skinretouch.regions`):
    ``small`` (the small-spot kernel), ``medium`` (LaMa if it serves), ``hard`` (FLUX if
    enabled, else LaMa). :func:`skinretouch.engines.manager.choose_engine` serves a need
    with an engine, or with :data:`CLASSICAL`.
route
    What actually repaired it, the report's ``route`` field (CONTRACT.md):
    ``freqsplit | patchmatch | lama | flux``. A region's classical route (freqsplit or
    patchmatch) is the one it takes when no neural engine serves it.
engine
    The report's ``engine`` field for each route (:data:`ENGINE_BY_ROUTE`); neural engines
    are registered under their own names (``lama``, ``flux-fill``, see
    :data:`skinretouch.engines.manager.INPAINT_ENGINES`), mapped to routes by
    :data:`ROUTE_BY_ENGINE`.
"""

from __future__ import annotations

__all__ = [
    "CLASSICAL",
    "CLASSICAL_ROUTES",
    "ENGINE_BY_ROUTE",
    "NEED_HARD",
    "NEED_MEDIUM",
    "NEED_SMALL",
    "ROUTES",
    "ROUTE_BY_ENGINE",
    "ROUTE_FLUX",
    "ROUTE_FREQSPLIT",
    "ROUTE_LAMA",
    "ROUTE_PATCHMATCH",
]

NEED_SMALL = "small"
NEED_MEDIUM = "medium"
NEED_HARD = "hard"

ROUTE_FREQSPLIT = "freqsplit"
ROUTE_PATCHMATCH = "patchmatch"
ROUTE_LAMA = "lama"
ROUTE_FLUX = "flux"
ROUTES = (ROUTE_FREQSPLIT, ROUTE_PATCHMATCH, ROUTE_LAMA, ROUTE_FLUX)
CLASSICAL_ROUTES = (ROUTE_FREQSPLIT, ROUTE_PATCHMATCH)

# The engine name choose_engine returns when the region's classical route should run.
CLASSICAL = "classical"
# Neural engine (registry name) -> the route the report names.
ROUTE_BY_ENGINE = {"lama": ROUTE_LAMA, "flux-fill": ROUTE_FLUX}
# Route -> the report's ``engine`` field.
ENGINE_BY_ROUTE = {
    ROUTE_FREQSPLIT: "freqsplit-numba",
    ROUTE_PATCHMATCH: "patchmatch+poisson",
    ROUTE_LAMA: "lama",
    ROUTE_FLUX: "flux-fill",
}
