"""Keep a native library's chatter off the terminal while it starts.

MediaPipe's C++ core logs through absl and TensorFlow Lite straight to file descriptor 2 when a
face landmarker is created: five lines on every ``skinretouch process`` ("Logging before
InitGoogle() is written to STDERR", "Created TensorFlow Lite XNNPACK delegate for CPU", three
absl warnings about its graph). Neither library reads a setting that silences them
(``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL`` and ``ABSL_MIN_LOG_LEVEL`` were tried), and
the service's journal got them too.

:func:`native_chatter_quieted` points descriptor 2 at a temporary file for the duration and
afterwards writes back everything that is not such chatter: another thread's message in that
moment comes a little later, but it comes, and so do the library's errors (absl ``E``/``F``
lines). Only informational and warning lines in the formats above are dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["is_native_chatter", "native_chatter_quieted"]

# absl's INFO and WARNING lines ("I0000 00:00:1796682159.784172   11356 file.cc:181] ..."),
# and the two lines absl and TensorFlow Lite print without that prefix.
_CHATTER = re.compile(
    rb"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] "
    rb"|WARNING: Logging before InitGoogle\(\) is written to STDERR"
    rb"|INFO: Created TensorFlow Lite [^\n]*delegate for CPU\.)"
)
_STDERR_FD = 2
# Descriptor 2 is the process's: one redirection at a time.
_redirecting = threading.Lock()


def is_native_chatter(line: bytes) -> bool:
    """Whether ``line`` is an informational or warning line of absl or TensorFlow Lite."""
    return _CHATTER.match(line) is not None


@contextlib.contextmanager
def native_chatter_quieted() -> Iterator[None]:
    """Descriptor 2 captured for the block; what is not native chatter is written back after.

    Where there is no descriptor 2, or no temporary file can be made, the block runs as it is
    (the chatter is printed; nothing is lost or raised)."""
    with _redirecting:
        try:
            _flush_stderr()
            saved = os.dup(_STDERR_FD)
        except OSError:  # no descriptor 2 (a closed stderr): nothing to quiet
            yield
            return
        import tempfile  # here, on the thread that creates the landmarker: not every start-up's

        try:
            capture = tempfile.TemporaryFile()
        except OSError:
            os.close(saved)
            yield
            return
        with capture:
            os.dup2(capture.fileno(), _STDERR_FD)
            try:
                yield
            finally:
                _flush_stderr()
                os.dup2(saved, _STDERR_FD)
                os.close(saved)
                capture.seek(0)
                kept = memoryview(b"".join(line for line in capture if not is_native_chatter(line)))
                while kept:
                    kept = kept[os.write(_STDERR_FD, kept) :]


def _flush_stderr() -> None:
    """Python's buffered stderr out to descriptor 2 first, so it lands on the right side."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or None
        sys.stderr.flush()
