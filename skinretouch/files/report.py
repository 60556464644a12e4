"""The JSON report written beside every photo (schema version 1, see CONTRACT.md).

:class:`Report` is the only writer of reports: ok and failed ones from the file stage,
and the failed one the daemon writes for a photo whose worker process died.
:data:`REPORT_JSON_SCHEMA` describes what every one of them contains.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:  # the daemon writes reports without loading the pipeline's modules
    from ..results import RegionRecord

__all__ = ["REPORT_JSON_SCHEMA", "SCHEMA_VERSION", "InputInfo", "Report", "read_report"]

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

    def fail(self, error: str) -> None:
        """Turn this report into a ``failed`` one: no outputs, regions or detection."""
        self.status, self.error = "failed", error
        self.outputs = {"image": None, "mask": None}
        self.regions, self.protected, self.detection = [], [], {}

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


def read_report(path: Path) -> dict[str, Any] | None:
    """The report at ``path`` as a dict, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_BBOX = {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}

# JSON Schema (draft 2020-12) of schema-1 reports, ok and failed alike.
REPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "skinretouch report, schema 1",
    "type": "object",
    "required": ["schema", "tool", "input", "outputs", "status", "error", "settings",
                 "timings_ms", "regions", "protected", "detection"],  # fmt: skip
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "tool": {
            "type": "object",
            "required": ["name", "version"],
            "properties": {"name": {"const": "skinretouch"}, "version": {"type": "string"}},
        },
        "input": {
            "type": "object",
            "required": ["path", "sha256", "width", "height", "bit_depth", "format"],
            "properties": {
                "path": {"type": "string"},
                "sha256": {"type": "string", "pattern": "^([0-9a-f]{64})?$"},
                "width": _NULLABLE_INT,
                "height": _NULLABLE_INT,
                "bit_depth": {"enum": [8, 16, None]},
                "format": _NULLABLE_STRING,
            },
        },
        "outputs": {
            "type": "object",
            "required": ["image", "mask"],
            "properties": {"image": _NULLABLE_STRING, "mask": _NULLABLE_STRING},
        },
        "status": {"enum": ["ok", "failed"]},
        "error": _NULLABLE_STRING,
        "settings": {
            "type": "object",
            "required": ["config_sha256", "detector", "mask_dilation_px"],
            "properties": {
                "config_sha256": {"type": "string"},
                "detector": {"type": "string"},
                "mask_dilation_px": {"type": "integer", "minimum": 0},
            },
        },
        "timings_ms": {"type": "object", "additionalProperties": {"type": "number"}},
        "regions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "bbox", "area_px", "area_fraction", "kind", "score", "route",
                             "engine", "hard_case", "hard_reasons", "texture_ratio"],  # fmt: skip
                "properties": {
                    "id": {"type": "integer"},
                    "bbox": _BBOX,
                    "area_px": {"type": "integer", "minimum": 0},
                    "area_fraction": {"type": "number", "minimum": 0, "maximum": 1},
                    "kind": {"type": "string"},
                    "score": {"type": "number"},
                    "route": {"enum": ["freqsplit", "patchmatch", "lama", "flux"]},
                    "engine": {"type": "string"},
                    "hard_case": {"type": "boolean"},
                    "hard_reasons": {"type": "array", "items": {"type": "string"}},
                    "texture_ratio": {"type": ["number", "null"]},
                    "fallback_reason": _NULLABLE_STRING,
                },
            },
        },
        "protected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kind", "bbox"],
                "properties": {"kind": {"type": "string"}, "bbox": _BBOX},
            },
        },
        "detection": {
            "type": "object",
            "properties": {"method": {"type": "string"}, "scale": {"type": "number"}},
        },
    },
    "allOf": [
        {
            "if": {"properties": {"status": {"const": "ok"}}},
            "then": {
                "properties": {
                    "error": {"type": "null"},
                    "outputs": {"properties": {"image": {"type": "string"}, "mask": {"type": "string"}}},
                    "detection": {"required": ["method", "scale"]},
                }
            },
            "else": {
                "properties": {
                    "error": {"type": "string"},
                    "outputs": {"properties": {"image": {"type": "null"}, "mask": {"type": "null"}}},
                    "regions": {"maxItems": 0},
                }
            },
        }
    ],
}
