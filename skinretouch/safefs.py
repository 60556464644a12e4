"""Opening a photo, or the folder it lives in, so that a hostile file cannot hurt us.

Three rules, checked at open time on the file descriptor (never by looking first and
opening later):

- Only regular files are read. A FIFO is opened non-blocking so that opening it cannot
  hang, then refused; devices (``/dev/zero`` behind a symlink), sockets and folders are
  refused too.
- A file is read only up to ``max_bytes``: its size is checked before reading, and the
  read stops one byte past the limit, so a file that grows while read cannot exhaust
  memory either.
- Below a hot folder nothing is followed: :func:`open_folder_beneath` walks from the hot
  folder down one name at a time with ``O_NOFOLLOW | O_DIRECTORY``, so a sub-folder
  swapped for a symlink mid-run is refused instead of leading outside. The descriptor
  it returns keeps naming the folder that was opened even if the folder is renamed
  afterwards, so the photo is read from, and its outputs written into, that folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import InputError, is_transient

__all__ = [
    "MAX_INPUT_BYTES",
    "MissingFile",
    "NotRegularFile",
    "open_folder_beneath",
    "read_regular_file",
]

# Largest photo file read (bytes): a 16-bit RGBA TIFF of 100 Mpx is 800 MB.
MAX_INPUT_BYTES = 1 << 30

_KINDS = (
    (stat.S_ISDIR, "is a folder, not an image"),
    (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
    (stat.S_ISCHR, "is a character device, not a regular file"),
    (stat.S_ISBLK, "is a block device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


class NotRegularFile(InputError):
    """The path names something other than a regular file we may read."""


class MissingFile(InputError, FileNotFoundError):
    """Nothing at the path (still a ``FileNotFoundError`` for callers that catch that)."""


def describe_not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, reason in _KINDS:
        if test(mode):
            return reason
    return "is not a regular file"


def read_regular_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = MAX_INPUT_BYTES,
    follow_symlinks: bool = True,
    dir_fd: int | None = None,
) -> bytes:
    """The content of the regular file ``path``.

    Parameters
    ----------
    path : path-like
        Relative to ``dir_fd`` when that is given.
    max_bytes : int
        Larger files are refused before anything is read.
    follow_symlinks : bool
        False: a symlink at ``path`` is refused (``O_NOFOLLOW``).

    Raises
    ------
    InputError
        Missing, a symlink loop, a symlink when not followed, not a regular file, over
        ``max_bytes``, or permission denied; the message says which.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise _open_error(exc, path, follow_symlinks=follow_symlinks, dir_fd=dir_fd) from None
    try:
        info = os.fstat(fd)
        problem = describe_not_regular(info.st_mode)
        if problem is not None:
            raise NotRegularFile(problem)
        if info.st_size > max_bytes:
            raise InputError(f"is {_megabytes(info.st_size)}, above the {_megabytes(max_bytes)} limit for a photo")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:
            raise InputError(f"grew past the {_megabytes(max_bytes)} limit for a photo while being read")
        return b"".join(chunks)
    except IsADirectoryError:
        raise NotRegularFile("is a folder, not an image") from None
    except PermissionError:
        raise InputError("permission denied") from None
    finally:
        os.close(fd)


def open_folder_beneath(root: Path, folder: Path) -> int:
    """A descriptor of ``folder`` reached from ``root`` without following any symlink.

    ``folder`` must be ``root`` or below it. Every name between them is opened with
    ``O_NOFOLLOW | O_DIRECTORY`` relative to the one before, so a symlink anywhere below
    ``root`` is refused. The caller closes the descriptor.

    Raises
    ------
    InputError
        A folder on the way is missing, is a symlink or is not a folder.
    """
    relative = folder.relative_to(root)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        walked = root
        for part in relative.parts:
            walked = walked / part
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    kind = "a symbolic link" if _is_symlink(part, fd) else "not a folder"
                    raise InputError(
                        f"folder {walked} is {kind} now; the daemon does not follow links inside a hot folder"
                    ) from None
                if exc.errno == errno.ENOENT:
                    raise InputError(f"folder {walked} vanished") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_symlink(name: str | os.PathLike[str], dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _open_error(exc: OSError, path, *, follow_symlinks: bool, dir_fd: int | None) -> Exception:
    if is_transient(exc):
        return exc  # not the photo's fault: the caller retries later
    if exc.errno == errno.ELOOP:
        if not follow_symlinks and _is_symlink(path, dir_fd):
            return NotRegularFile("is a symbolic link; only regular files are taken from a hot folder")
        return InputError("symbolic link loop (the link points back at itself)")
    if exc.errno == errno.ENOENT:
        if _is_symlink(path, dir_fd):
            return MissingFile("symbolic link to a missing file")
        return MissingFile("no such file")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InputError("permission denied")
    if exc.errno == errno.ENAMETOOLONG:
        return InputError("file name too long for this filesystem")
    if exc.errno == errno.ENXIO:
        return NotRegularFile("is a socket or a device without a reader, not a regular file")
    return InputError(exc.strerror or str(exc))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
