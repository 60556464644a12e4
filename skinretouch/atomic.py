"""Atomic file writes: a reader sees either the complete new file or none.

The data goes to a hidden temporary file in the target's own folder (so the final
``rename`` never crosses a filesystem and a hot-folder watcher that skips dot files and
``*.tmp`` never picks it up), is flushed and fsynced, then renamed over the target, and
the folder is fsynced so the rename itself survives a power cut. On any exception the
temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write_bytes", "atomic_writer", "temporary_name", "temporary_prefix"]

# Keeps ".NAME.<8 hex>.tmp" within the usual 255-byte limit on a file name.
_MAX_STEM_CHARS = 200
_CREATE_ATTEMPTS = 16


def temporary_name(target: str | os.PathLike[str]) -> Path:
    """The hidden temporary path used while ``target`` is being written.

    ``.NAME.<random>.tmp`` in the same folder as ``target``.
    """
    target = Path(target)
    return target.with_name(f"{temporary_prefix(target.name)}{secrets.token_hex(4)}.tmp")


def temporary_prefix(name: str) -> str:
    """``.NAME.``, with a long NAME cut in its middle so that its suffix is kept.

    The suffix tells whose temporary it is (``is_our_temp_name``); the result keeps
    ``.PREFIX<8 hex>.tmp`` within the 255-byte limit on a file name.
    """
    if len(name) > _MAX_STEM_CHARS:
        half = _MAX_STEM_CHARS // 2
        name = name[:half] + name[-half:]
    return f".{name}."


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file whose content replaces ``path`` atomically on success.

    Usage::

        with atomic_writer(out_path) as f:
            f.write(data)

    Raises
    ------
    OSError
        Creating, writing, syncing or renaming failed (permission denied, disk full,
        missing folder...); its ``filename`` is ``path``, never the temporary. The
        temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    try:
        temp_path, fd = _create_temporary(target)
    except OSError as exc:
        raise _about_target(exc, target) from None
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_path)
        if isinstance(exc, OSError):
            raise _about_target(exc, target) from None
        raise
    _fsync_directory(target.parent)


def _about_target(exc: OSError, target: Path) -> OSError:
    """``exc`` naming the file being written, never its hidden temporary."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(target))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as file:
        file.write(data)


def _create_temporary(target: Path) -> tuple[Path, int]:
    # os.open with 0o666 lets the umask decide the final permissions, as for any new
    # file (tempfile.mkstemp would leave the photo readable by its owner only).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_CREATE_ATTEMPTS):
        candidate = temporary_name(target)
        try:
            return candidate, os.open(candidate, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # e.g. Windows, where a folder cannot be opened; the rename is done
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some network and FUSE filesystems cannot sync a folder; the file itself is synced.
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)
