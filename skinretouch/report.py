"""The JSON report written beside every photo (schema version 1, see CONTRACT.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .errors import InputError

__all__ = ["SCHEMA_VERSION", "InputInfo", "RegionRecord", "Report", "read_report"]

SCHEMA_VERSION = 1


@dataclass(kw_only=True)
class InputInfo:
    path: str
    sha256: str
    width: int | None = None
    height: int | None = None
    bit_depth: int | None = None
    format: str | None = None


@dataclass(kw_only=True)
class RegionRecord:
    id: int
    bbox: tuple[int, int, int, int]
    area_px: int
    area_fraction: float
    kind: str
    score: float
    route: str
    engine: str
    hard_case: bool
    hard_reasons: list[str]
    texture_ratio: float | None
    fallback_reason: str | None = None


@dataclass(kw_only=True)
class Report:
    input: InputInfo
    status: str = "ok"
    error: str | None = None
    outputs: dict[str, str | None] = field(default_factory=lambda: {"image": None, "mask": None})
    settings: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    regions: list[RegionRecord] = field(default_factory=list)
    protected: list[dict[str, Any]] = field(default_factory=list)
    detection: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "tool": {"name": "skinretouch", "version": __version__},
            "input": vars(self.input),
            "outputs": dict(self.outputs),
            "status": self.status,
            "error": self.error,
            "settings": dict(self.settings),
            "timings_ms": {key: round(value, 3) for key, value in self.timings_ms.items()},
            "regions": [_region_dict(region) for region in self.regions],
            "protected": list(self.protected),
            "detection": dict(self.detection),
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n").encode("utf-8")


def _region_dict(region: RegionRecord) -> dict[str, Any]:
    record = dict(vars(region))
    record["bbox"] = list(region.bbox)
    record["area_fraction"] = round(region.area_fraction, 8)
    record["score"] = round(region.score, 4)
    if region.texture_ratio is not None:
        record["texture_ratio"] = round(region.texture_ratio, 4)
    return record


# A report is a few kB; anything far larger at a report's name is not one of ours.
MAX_REPORT_BYTES = 16 << 20


def read_report(path: Path) -> dict[str, Any] | None:
    """The report at ``path`` as a dict, or None if it is missing or unreadable.

    Only a regular file is read (a FIFO at a report's name must not hang the reader).
    """
    from .safefs import read_regular_file

    try:
        data = json.loads(read_regular_file(path, max_bytes=MAX_REPORT_BYTES).decode("utf-8"))
    except (OSError, ValueError, InputError):
        return None
    return data if isinstance(data, dict) else None
