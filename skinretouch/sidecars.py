"""Names of the files written next to a photo, darktable style (full name + suffix).

For ``DIR/NAME.EXT``: ``NAME.retouched.EXT`` (the photo), ``NAME.EXT.mask.png`` and
``NAME.EXT.retouch.json``; so ``IMG_1.JPG`` and ``IMG_1.CR3`` never collide.
"""

from __future__ import annotations

import fnmatch
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
    """The three output paths of ``input_path`` (into ``out_dir`` if given, else beside it)."""
    folder = out_dir if out_dir is not None else input_path.parent
    name = input_path.name
    return OutputPaths(
        image=folder / f"{input_path.stem}{RETOUCHED_INFIX}{input_path.suffix}",
        mask=folder / f"{name}{MASK_SUFFIX}",
        report=folder / f"{name}{REPORT_SUFFIX}",
    )


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
