"""Engine names mapped to ``"module:Class"`` and imported on first use.

Importing lazily keeps heavy optional stacks (torch, diffusers, TensorRT) out of processes
that never use them; a missing optional package makes an engine unavailable, not a crash.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ConfigError

__all__ = ["DETECTORS", "load_class"]

DETECTORS: dict[str, str] = {
    "classical": "skinretouch.engines.classical_detector:ClassicalDetector",
}


def load_class(table: dict[str, str], name: str, *, key: str) -> Any:
    """Import the class registered as ``name``; ``key`` names the config key for errors."""
    try:
        target = table[name]
    except KeyError:
        raise ConfigError(key, f"unknown engine {name!r}; known: {', '.join(sorted(table))}") from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
