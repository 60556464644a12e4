"""The same shared folder mounted under different paths on different machines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["PathMap"]


@dataclass(frozen=True)
class PathMap:
    """Prefix rules from the daemon's paths to this machine's (``cluster.path_map``).

    Parameters
    ----------
    rules : tuple of (daemon_prefix, local_prefix)
        Absolute POSIX paths; the longest matching daemon prefix wins.
    """

    rules: tuple[tuple[PurePosixPath, PurePosixPath], ...] = ()

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> PathMap:
        """From ``"DAEMON_PATH=WORKER_PATH"`` strings (validated by the config loader)."""
        rules = []
        for entry in entries:
            daemon_side, _, local_side = entry.partition("=")
            rules.append((PurePosixPath(daemon_side.strip()), PurePosixPath(local_side.strip())))
        return cls(tuple(sorted(rules, key=lambda rule: -len(rule[0].parts))))

    def to_local(self, path: str) -> str:
        """``path`` as the daemon named it, as this machine sees it (unchanged if no rule matches)."""
        pure = PurePosixPath(path)
        for daemon_prefix, local_prefix in self.rules:
            if pure == daemon_prefix or pure.is_relative_to(daemon_prefix):
                return str(local_prefix / pure.relative_to(daemon_prefix))
        return path

    def describe(self) -> str:
        """The rules as written in the config, for error messages."""
        if not self.rules:
            return "cluster.path_map = [] (no mapping: the worker uses the daemon's paths as they are)"
        written = ", ".join(f'"{d}={l}"' for d, l in self.rules)
        return f"cluster.path_map = [{written}]"
