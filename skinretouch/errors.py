"""Exceptions that carry a reason a user can act on."""

from __future__ import annotations

import errno

# OS errors that say nothing about the photo: a full disk or quota, a short moment without
# memory or file handles. A photo hit by one is not failed; it is tried again later.
TRANSIENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.ENOMEM, errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.EINTR}
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an OS error worth retrying later (see ``TRANSIENT_ERRNOS``)."""
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


class SkinRetouchError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SkinRetouchError):
    """A configuration file or value is invalid; names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key


class InputError(SkinRetouchError):
    """One input file cannot be processed (the batch goes on)."""


class UnsupportedFormat(InputError):
    """The file is not an image format we read (sniffed from its bytes)."""


class CorruptImage(InputError):
    """The file claims a supported format but cannot be decoded."""


class MaskError(InputError):
    """A user-supplied mask does not fit its image."""
