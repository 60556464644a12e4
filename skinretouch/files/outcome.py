"""The seam between the file stage and whatever drives it (CLI loop, daemon worker, bench).

A driver holds a :class:`FileProcessor` and gets one :class:`FileOutcome` per photo. The
daemon's worker processes build theirs from a ``"module:attribute"`` factory
``(Config) -> FileProcessor`` (the real one is :class:`skinretouch.files.stage.RetouchFiles`)
and send the outcome back over a pipe, so both types stay small and picklable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

__all__ = ["FileOutcome", "FileProcessor", "FileStatus"]

FileStatus = Literal["ok", "failed", "skipped"]


@dataclass(kw_only=True)
class FileOutcome:
    """What happened to one input file.

    ``reason`` says why a photo was ``skipped`` before it reached the file stage (the
    daemon's own checks); a skip by the file stage (same sha256 as an ``ok`` report) has
    none.
    """

    input_path: Path
    status: FileStatus
    error: str | None = None
    reason: str | None = None
    report_path: Path | None = None
    image_path: Path | None = None
    mask_path: Path | None = None
    overlay_path: Path | None = None
    regions: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


class FileProcessor(Protocol):
    """Turns photo files into their outputs; never raises for a bad photo."""

    def process_file(self, path: Path, *, out_dir: Path | None = None, force: bool = False) -> FileOutcome:
        """Write ``path``'s retouched photo, mask and report (into ``out_dir`` if given)."""
        ...

    def report_settings(self) -> dict[str, Any]:
        """The ``settings`` its reports carry, for a report written on its behalf
        (a photo whose worker process died)."""
        ...

    def close(self) -> None:
        """Free what it loaded."""
        ...
