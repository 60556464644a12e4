"""The processed photos under the review folders, and the only way to reach their files.

A photo is known by its report (``NAME.EXT.retouch.json``); its key is the folder's index
and the report's path below it without the suffix (``0/sub/IMG_1.jpg``). Every file the
server reads is checked by :class:`FolderGuard`: its real path (symlinks followed) must lie
under one of the folders, so neither ``..`` nor a symlink reaches anything else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..files.report import read_report
from ..sidecars import REPORT_SUFFIX, output_paths

__all__ = ["REVIEW_DIR", "FolderGuard", "OutsideFolders", "Photo", "load_photo", "scan_photos"]

# Hidden, so the daemon and `process DIR` never take what is kept in it as input.
REVIEW_DIR = ".skinretouch-review"


class OutsideFolders(Exception):
    """A requested path is not a file under the review folders."""


class FolderGuard:
    """Answers whether a path really lies under one of the review folders."""

    def __init__(self, folders: list[Path]) -> None:
        self.roots = [Path(os.path.realpath(folder)) for folder in folders]

    def check(self, path: Path) -> Path:
        """``path`` with its symlinks resolved, if that lies under a folder; else raises."""
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(root) for root in self.roots):
            raise OutsideFolders(f"{path} is outside the review folders")
        return real

    def report_path(self, key: str) -> Path:
        """The report named by a photo key; refuses absolute paths, ``..`` and escapes."""
        index_text, _, relative_text = key.partition("/")
        if not index_text.isdigit() or int(index_text) >= len(self.roots) or not relative_text:
            raise OutsideFolders(f"no photo {key!r}")
        relative = PurePosixPath(relative_text)
        # Only the canonical spelling: "a/./b", "a//b", "..", "\\" and absolute paths are refused.
        if relative.is_absolute() or relative.as_posix() != relative_text or ".." in relative.parts or "\\" in relative_text:
            raise OutsideFolders(f"no photo {key!r}")
        report = self.roots[int(index_text)].joinpath(*relative.parts[:-1], relative.name + REPORT_SUFFIX)
        real = self.check(report)
        if not real.is_file():
            raise OutsideFolders(f"no photo {key!r}")
        return report


@dataclass(kw_only=True)
class Photo:
    """One processed photo as the review page sees it."""

    key: str
    report_path: Path
    report: dict[str, Any]
    input_path: Path
    image_path: Path | None
    mask_path: Path | None
    automatic: dict[str, Any] = field(default_factory=dict)  # the report before any review

    @property
    def name(self) -> str:
        return self.input_path.name

    @property
    def state_dir(self) -> Path:
        """Where the review keeps the automatic outputs (for undo) and the brushed mask."""
        return self.report_path.parent / REVIEW_DIR / self.input_path.name

    @property
    def review(self) -> dict[str, Any] | None:
        review = self.report.get("review")
        return review if isinstance(review, dict) else None

    def summary(self) -> dict[str, Any]:
        """The list row: status, spots, flags and whether it still needs a look."""
        regions = self.automatic.get("regions") or []
        hard = sum(1 for region in regions if region.get("hard_case"))
        fallbacks = sum(1 for region in regions if region.get("fallback_reason"))
        failed = self.report.get("status") != "ok"
        review = self.review
        flagged = failed or hard > 0 or fallbacks > 0
        return {
            "key": self.key,
            "name": self.name,
            "folder": str(self.input_path.parent),
            "status": self.report.get("status", "unknown"),
            "error": self.report.get("error"),
            "review": review.get("status") if review else None,
            "spots": len(regions),
            "hard_cases": hard,
            "fallbacks": fallbacks,
            "failed": failed,
            "needs_review": review is None and (flagged or len(regions) > 0),
        }


def scan_photos(guard: FolderGuard) -> list[Photo]:
    """Every readable report under the folders (hidden folders skipped), sorted by key."""
    photos = []
    for index, root in enumerate(guard.roots):
        for directory, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
            for name in filenames:
                if not name.endswith(REPORT_SUFFIX) or name.startswith("."):
                    continue
                relative = Path(directory, name).relative_to(root).as_posix()
                key = f"{index}/{relative[: -len(REPORT_SUFFIX)]}"
                try:
                    photos.append(load_photo(guard, key))
                except OutsideFolders:
                    continue
    return sorted(photos, key=lambda photo: photo.key)


def load_photo(guard: FolderGuard, key: str) -> Photo:
    """The photo of ``key``, its files checked against the folders."""
    report_path = guard.report_path(key)
    report = read_report(report_path)
    if report is None:
        raise OutsideFolders(f"{key}: unreadable report")
    recorded_input = (report.get("input") or {}).get("path")
    input_path = Path(recorded_input) if recorded_input else report_path.with_name(report_path.name[: -len(REPORT_SUFFIX)])
    guard.check(input_path)
    defaults = output_paths(input_path, report_path.parent)
    outputs = report.get("outputs") or {}
    image_path = _checked(guard, outputs.get("image"), defaults.image)
    mask_path = _checked(guard, outputs.get("mask"), defaults.mask)
    photo = Photo(key=key, report_path=report_path, report=report, input_path=input_path,
                  image_path=image_path, mask_path=mask_path)  # fmt: skip
    photo.automatic = report
    if photo.review is not None:
        saved = read_report(photo.state_dir / "automatic" / "report.json")
        if saved is not None:
            photo.automatic = saved
    return photo


def _checked(guard: FolderGuard, recorded: str | None, default: Path) -> Path | None:
    """A recorded output path if it lies under the folders; None for a missing one."""
    path = Path(recorded) if recorded else default
    try:
        guard.check(path)
    except OutsideFolders:
        return None
    return path if path.is_file() else None
