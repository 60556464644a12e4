"""Names of the files written next to a photo, darktable style (full name + suffix).

For ``DIR/NAME.EXT``: ``NAME.retouched.EXT`` (the photo), ``NAME.EXT.mask.png`` and
``NAME.EXT.retouch.json``; so ``IMG_1.JPG`` and ``IMG_1.CR3`` never collide.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MASK_SUFFIX",
    "OVERLAY_SUFFIX",
    "REPORT_SUFFIX",
    "RETOUCHED_INFIX",
    "OutputPaths",
    "is_ignored_name",
    "is_sidecar_or_output",
    "output_paths",
]

RETOUCHED_INFIX = ".retouched"
MASK_SUFFIX = ".mask.png"
REPORT_SUFFIX = ".retouch.json"
OVERLAY_SUFFIX = ".overlay.png"  # written only with --debug-overlay

# Hidden files, partial downloads, editor backups and our own atomic-write temporaries.
_IGNORED_PATTERNS = (".*", "*.part", "*.tmp", "*~")


@dataclass(frozen=True)
class OutputPaths:
    """Where the outputs of one input go."""

    image: Path
    mask: Path
    report: Path


def output_paths(input_path: Path, out_dir: Path | None = None) -> OutputPaths:
    """The three output paths of ``input_path`` (into ``out_dir`` if given, else beside it).

    A name that would exceed the filesystem's 255-byte limit once its suffix is added is
    shortened before the suffix and tagged with a hash of the full name, so a photo with
    a long (but valid) name still gets its outputs, and two long names never collide.
    """
    folder = out_dir if out_dir is not None else input_path.parent
    name = input_path.name
    return OutputPaths(
        image=folder / _fit(input_path.stem, f"{RETOUCHED_INFIX}{input_path.suffix}", name),
        mask=folder / _fit(name, MASK_SUFFIX, name),
        report=folder / _fit(name, REPORT_SUFFIX, name),
    )


MAX_NAME_BYTES = 255  # a file name's limit on ext4, XFS, btrfs, tmpfs, NTFS...


def _fit(base: str, suffix: str, full_name: str) -> str:
    candidate = base + suffix
    if len(os.fsencode(candidate)) <= MAX_NAME_BYTES:
        return candidate
    tag = "~" + hashlib.sha256(os.fsencode(full_name)).hexdigest()[:10]
    budget = MAX_NAME_BYTES - len(os.fsencode(suffix)) - len(tag)
    shortened = os.fsencode(base)[:budget].decode("utf-8", errors="ignore")
    return shortened + tag + suffix


def is_sidecar_or_output(path: Path | str) -> bool:
    """True for files this tool writes: retouched photos, masks, reports and overlays."""
    name = Path(path).name
    if name.endswith((MASK_SUFFIX, REPORT_SUFFIX, OVERLAY_SUFFIX)):
        return True
    stem, dot, _ext = name.rpartition(".")
    return bool(dot) and stem.endswith(RETOUCHED_INFIX)


def is_ignored_name(path: Path | str) -> bool:
    """True for hidden, partial and temporary files, which are never inputs."""
    name = Path(path).name
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in _IGNORED_PATTERNS)
