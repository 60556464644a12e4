"""Keeps inpainting engines warm for the life of the process, and routes regions to them.

- Engines are named in :data:`INPAINT_ENGINES` as ``"module:Class"`` and imported on first
  use, so torch and diffusers load only in processes that use them.
- An engine is loaded once, on first use, and stays loaded (LaMa: a few hundred MB).
- At most one *heavy* engine (FLUX.1 Fill: tens of GB) is loaded; loading another heavy one
  first unloads it and frees the device memory; FLUX is therefore only ever loaded on demand.
- A failed load leaves the manager as it was (the engine it displaced is loaded back), marks
  the engine unavailable with the error as reason (so routing falls back from then on) and
  re-raises.

:func:`choose_engine` is the routing rule (vocabulary: :mod:`skinretouch.routes`): medium regions -> LaMa if available, else the
classical route; hard regions -> FLUX if enabled and available, else LaMa, else classical;
each fallback comes with the reason to record in the report.
"""

from __future__ import annotations

import gc
import importlib
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..config import EnginesConfig
from ..logs import get_logger
from ..routes import CLASSICAL, NEED_HARD, NEED_MEDIUM
from .inpaint_base import EngineError, EngineUnavailable, InpaintEngine

__all__ = [
    "CLASSICAL",
    "INPAINT_ENGINES",
    "EngineManager",
    "choose_engine",
    "doctor_rows",
    "engine_class",
    "free_device_memory",
]

log = get_logger(__name__)

INPAINT_ENGINES: dict[str, str] = {
    "lama": "skinretouch.engines.lama:LamaEngine",
    "flux-fill": "skinretouch.engines.flux:FluxFillEngine",
}


def engine_class(name: str, table: Mapping[str, str] = INPAINT_ENGINES) -> type[InpaintEngine]:
    """Import the engine class registered as ``name``."""
    try:
        target = table[name]
    except KeyError:
        raise EngineUnavailable(f"unknown inpaint engine {name!r}; known: {', '.join(sorted(table))}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def free_device_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver (when torch is loaded)."""
    gc.collect()
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


class EngineManager:
    """Loads engines on demand and keeps them warm; thread-safe.

    Parameters
    ----------
    config
        The engines section of the configuration.
    table
        Engine name -> ``"module:Class"``; tests register fakes here.
    """

    def __init__(self, config: EnginesConfig, *, table: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.table = dict(INPAINT_ENGINES if table is None else table)
        self._loaded: dict[str, InpaintEngine] = {}
        self._failed: dict[str, str] = {}
        self._availability: dict[str, tuple[bool, str]] = {}
        self._lock = threading.RLock()

    # --- state ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        return list(self.table)

    def loaded(self) -> list[str]:
        """Names of the engines now in memory."""
        with self._lock:
            return list(self._loaded)

    def available(self, name: str) -> tuple[bool, str]:
        """``(ok, reason)`` for an engine, computed once per manager (never loads weights).

        An engine whose load failed stays unavailable, with the error as its reason.
        """
        with self._lock:
            if name in self._failed:
                return False, self._failed[name]
            if name not in self._availability:
                try:
                    self._availability[name] = engine_class(name, self.table).available(self.config)
                except ImportError as exc:
                    self._availability[name] = (False, f"package missing: {exc.name or exc}")
                except EngineUnavailable as exc:
                    self._availability[name] = (False, str(exc))
            return self._availability[name]

    def refresh(self) -> None:
        """Forget cached availability and load failures (weights were added or fixed);
        loaded engines stay loaded."""
        with self._lock:
            self._availability.clear()
            self._failed.clear()

    # --- loading -----------------------------------------------------------------------

    def get(self, name: str) -> InpaintEngine:
        """The loaded engine ``name``, loading it (and swapping out a heavy one) if needed.

        Raises
        ------
        EngineUnavailable
            The engine cannot run here (the reason).
        EngineError
            Loading failed; the manager is back in its previous state.
        """
        with self._lock:
            engine = self._loaded.get(name)
            if engine is not None:
                return engine
            ok, reason = self.available(name)
            if not ok:
                raise EngineUnavailable(f"{name}: {reason}")
            cls = engine_class(name, self.table)
            displaced = [other for other, e in self._loaded.items() if cls.heavy and e.heavy]
            for other in displaced:
                self._unload(other)
            if displaced:
                free_device_memory()
            engine = cls(self.config)
            try:
                engine.load()
                engine.loaded = True
            except Exception as exc:
                engine.unload()
                del engine
                free_device_memory()
                self._failed[name] = f"failed to load: {exc}"
                log.error("engine load failed", engine=name, error=str(exc))
                for other in displaced:  # roll back: what was warm is warm again
                    try:
                        self._load_again(other)
                    except Exception as again:  # pragma: no cover - reported, original raised
                        log.error("engine reload failed", engine=other, error=str(again))
                if isinstance(exc, EngineError):
                    raise
                raise EngineError(f"{name}: failed to load: {exc}") from exc
            self._loaded[name] = engine
            log.info("engine loaded", engine=name, warm=list(self._loaded))
            return engine

    def _load_again(self, name: str) -> None:
        engine = engine_class(name, self.table)(self.config)
        engine.load()
        engine.loaded = True
        self._loaded[name] = engine

    def _unload(self, name: str) -> None:
        engine = self._loaded.pop(name)
        engine.unload()
        log.info("engine unloaded", engine=name)

    def unload(self, name: str) -> None:
        """Drop one engine from memory (no-op when it is not loaded)."""
        with self._lock:
            if name in self._loaded:
                self._unload(name)
                free_device_memory()

    def close(self) -> None:
        """Unload everything and free device memory."""
        with self._lock:
            if not self._loaded:  # nothing to free: a collection here cost a classical run ~0.1 s
                return
            for name in list(self._loaded):
                self._unload(name)
            free_device_memory()

    def __enter__(self) -> EngineManager:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- running -----------------------------------------------------------------------

    def inpaint(self, name: str, crop: np.ndarray, hole: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Fill ``hole`` in ``crop`` with engine ``name``.

        Parameters
        ----------
        crop : (h, w, 3) float32 ndarray
            RGB in [0, 1], a crop around one region with context (see
            ``engine_class(name).crop_margin``).
        hole : (h, w) bool ndarray
            True where pixels are replaced.
        seed : int
            Noise seed (FLUX); LaMa is deterministic.

        Returns
        -------
        (h, w, 3) float32 ndarray
            Equal to ``crop`` outside ``hole`` bit for bit.
        """
        with self._lock:  # one model call at a time: models are not re-entrant on one device
            return self.get(name)(crop, hole, seed=seed)


def choose_engine(need: str, manager: EngineManager, config: EnginesConfig) -> tuple[str, str | None]:
    """The engine a region gets, and why it fell back (``None`` when it got its first choice).

    Parameters
    ----------
    need
        :data:`~skinretouch.routes.NEED_MEDIUM` (too big for the small-spot kernel) or
        :data:`~skinretouch.routes.NEED_HARD` (flagged hard, or a user asked for the
        strongest engine); anything else stays classical.
    manager
        Answers availability (cached; never loads weights).
    config
        ``flux_enabled`` gates FLUX: it never runs unless switched on.

    Returns
    -------
    (engine_name, fallback_reason)
        ``engine_name`` is ``"lama"``, ``"flux-fill"`` or :data:`CLASSICAL`.
    """
    reasons: list[str] = []
    if need == NEED_HARD:
        if not config.flux_enabled:
            reasons.append("flux-fill not enabled (engines.flux_enabled is false)")
        else:
            ok, reason = manager.available("flux-fill")
            if ok:
                return "flux-fill", None
            reasons.append(f"flux-fill unavailable: {reason}")
    if need in (NEED_MEDIUM, NEED_HARD):
        ok, reason = manager.available("lama")
        if ok:
            return "lama", ("; ".join(reasons) or None)
        reasons.append(f"lama unavailable: {reason}")
        return CLASSICAL, "; ".join(reasons)
    return CLASSICAL, None


def doctor_rows(config: EnginesConfig) -> list[tuple[str, str, bool, str]]:
    """``(group, name, available, reason)`` for every inpaint engine and runtime backend.

    For ``skinretouch doctor``; loads no weights and never raises (a probe that fails is a
    row saying so).
    """
    from .runtime import BACKENDS, resolve_device

    rows: list[tuple[str, str, bool, str]] = []
    for name in INPAINT_ENGINES:
        try:
            ok, reason = engine_class(name).available(config)
        except Exception as exc:  # a broken optional stack must not hide the other rows
            ok, reason = False, f"probe failed: {exc}"
        if name == "flux-fill" and ok and not config.flux_enabled:
            reason += "; not enabled (engines.flux_enabled = false): hard regions use LaMa"
        rows.append(("inpaint", name, ok, reason))
    try:
        device = resolve_device(config.device)
    except Exception as exc:  # pragma: no cover - torch present but broken
        return rows + [("backend", "device", False, f"probe failed: {exc}")]
    for name, backend in BACKENDS.items():
        try:
            ok, reason = backend.available(device)
        except Exception as exc:
            ok, reason = False, f"probe failed: {exc}"
        rows.append(("backend", name, ok, reason))
    return rows
