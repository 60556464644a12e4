"""Which files in a hot folder are photos to process, and where their outputs go."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import temporary_prefix
from ..config import DaemonConfig
from ..sidecars import is_ignored_name, is_sidecar_or_output, output_paths

__all__ = [
    "HotFolders",
    "is_our_temp_name",
    "resolve_state_dir",
    "temp_names_for",
]


@dataclass(frozen=True)
class HotFolders:
    """The watched folders and the rules that pick photos in them.

    Parameters
    ----------
    roots : tuple of Path
        Absolute, resolved hot folders.
    config : DaemonConfig
        ``recursive``, ``include``, ``exclude``, ``output_dir`` and ``failed_dir`` are used.
    """

    roots: tuple[Path, ...]
    recursive: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    output_dir: Path | None
    failed_dir: Path | None
    # folders inside a hot folder that hold our own files, never inputs
    skip_dirs: tuple[Path, ...]

    @classmethod
    def from_config(cls, roots: list[Path], config: DaemonConfig, *, state_dir: Path | None) -> HotFolders:
        output_dir = Path(config.output_dir).expanduser().resolve() if config.output_dir else None
        failed_dir = Path(config.failed_dir).expanduser().resolve() if config.failed_dir else None
        skip = tuple(p for p in (output_dir, failed_dir, state_dir) if p is not None)
        return cls(
            roots=tuple(Path(r).expanduser().resolve() for r in roots),
            recursive=config.recursive,
            include=tuple(p.lower() for p in config.include),
            exclude=tuple(p.lower() for p in config.exclude),
            output_dir=output_dir,
            failed_dir=failed_dir,
            skip_dirs=skip,
        )

    def root_of(self, path: Path) -> Path | None:
        """The hot folder that ``path`` belongs to (deepest match), or None."""
        best = None
        for root in self.roots:
            if path.is_relative_to(root) and (best is None or len(root.parts) > len(best.parts)):
                best = root
        return best

    def accepts(self, path: Path) -> Path | None:
        """The root if ``path`` (absolute) names a photo to process, else None.

        Rejected: hidden, partial and temporary files (``.*``, ``*.part``, ``*.tmp``,
        ``*~``), anything under a hidden folder, our own outputs and sidecars, files in
        the output/failed/state folders, names outside ``include`` or inside ``exclude``
        (case-insensitive, matched against the name and the path below the root), and
        files in sub-folders when not recursive.
        """
        root = self.root_of(path)
        if root is None or path == root:
            return None
        relative = path.relative_to(root)
        if not self.recursive and len(relative.parts) != 1:
            return None
        if any(part.startswith(".") for part in relative.parts[:-1]):
            return None
        name = path.name
        if is_ignored_name(name) or is_sidecar_or_output(name):
            return None
        if any(path.is_relative_to(skip) for skip in self.skip_dirs):
            return None
        lowered = name.lower()
        if not any(fnmatch.fnmatchcase(lowered, pattern) for pattern in self.include):
            return None
        relative_text = relative.as_posix().lower()
        if any(
            fnmatch.fnmatchcase(lowered, pattern) or fnmatch.fnmatchcase(relative_text, pattern)
            for pattern in self.exclude
        ):
            return None
        return root

    def walks_into(self, directory: Path) -> bool:
        """Whether a scan descends into ``directory`` (absolute)."""
        root = self.root_of(directory)
        if root is None:
            return False
        if directory == root:
            return True
        if not self.recursive:
            return False
        if any(part.startswith(".") for part in directory.relative_to(root).parts):
            return False
        return not any(directory.is_relative_to(skip) for skip in self.skip_dirs)

    def out_dir_for(self, path: Path, root: Path) -> Path | None:
        """Where the outputs of ``path`` go: None (beside it) or the mirrored output folder."""
        if self.output_dir is None:
            return None
        return self.output_dir / path.parent.relative_to(root)

    def report_path(self, path: Path, root: Path) -> Path:
        return output_paths(path, self.out_dir_for(path, root)).report


def is_our_temp_name(name: str) -> bool:
    """True for ``.NAME.RANDOM.tmp`` (or ``.NAME.tmp``) where NAME is one of our outputs."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    inner = name[1:-4]
    return is_sidecar_or_output(inner) or is_sidecar_or_output(inner.rpartition(".")[0])


def temp_names_for(photo: Path, out_dir: Path | None) -> tuple[Path, tuple[str, ...]]:
    """The folder and name prefixes of the temporaries written for ``photo``'s outputs."""
    outputs = output_paths(photo, out_dir)
    return outputs.report.parent, tuple(temporary_prefix(p.name) for p in (outputs.image, outputs.mask, outputs.report))


def resolve_state_dir(config: DaemonConfig) -> Path:
    """The folder for the status file and the single-instance lock."""
    if config.state_dir:
        return Path(config.state_dir).expanduser().resolve()
    systemd_state = os.environ.get("STATE_DIRECTORY")
    if systemd_state:
        return Path(systemd_state.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "skinretouch"
