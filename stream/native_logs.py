"""Keep MediaPipe's native start-up chatter off the screen without losing anything else.

MediaPipe's C++ graph and its TensorFlow Lite delegate write straight to file descriptor 2 when a
face graph starts and meets its first face ("Created TensorFlow Lite XNNPACK delegate", "Feedback
manager requires a model with a single signature…", "Using NORM_RECT without IMAGE_DIMENSIONS…").
Python cannot filter those, so :func:`native_quiet` points fd 2 at a temporary file for the
duration, then restores it and writes back every line that is not such chatter (our own log lines
and real native errors included). ``dfstream --debug`` turns it off and shows everything.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

CHATTER = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] "  # glog INFO / WARNING lines
    r"|INFO: Created TensorFlow Lite"
    r"|WARNING: All log messages before absl::InitializeLog\(\))"
)
"""Native lines that say nothing a user can act on. Native errors (E…, F…) are never hidden."""

OPENCV_SILENT = 0
"""OpenCV's log levels: 0 silent … 6 verbose (``cv2.setLogLevel``)."""
_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_capture: IO[bytes] | None = None
_show_all = False
_libc = ctypes.CDLL(None)


def _flush_all() -> None:
    """Flush Python's and C's stdio buffers: native code writes through C's, which may buffer."""
    sys.stderr.flush()
    _libc.fflush(None)


def show_native_logs(show: bool) -> None:
    """``--debug``: let native lines through untouched."""
    global _show_all
    _show_all = show


def showing_all() -> bool:
    return _show_all


def is_chatter(line: str) -> bool:
    return bool(CHATTER.match(line))


@contextlib.contextmanager
def native_quiet() -> Iterator[None]:
    """Hold fd 2's output until the outermost block ends, then pass on all but the chatter.

    Re-entrant and thread-safe: streams that start their face graphs in parallel share one capture."""
    if _show_all:
        yield
        return
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        if _depth == 0:
            _flush_all()
            _capture = tempfile.TemporaryFile()
            _saved_fd = os.dup(2)
            os.dup2(_capture.fileno(), 2)
        _depth += 1


def _leave() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        _depth -= 1
        if _depth > 0 or _saved_fd is None or _capture is None:
            return
        _flush_all()
        os.dup2(_saved_fd, 2)
        os.close(_saved_fd)
        capture, _saved_fd, _capture = _capture, None, None
    capture.seek(0)
    kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True) if not is_chatter(line)]
    capture.close()
    if kept:
        sys.stderr.write("".join(kept))
        sys.stderr.flush()


@atexit.register
def _restore_at_exit() -> None:
    """A run that fails while a hold is open (an error raised before the first frame) still shows
    what it wrote, its one-line error included: the capture is passed on before the process ends."""
    global _depth
    with _lock:
        if _depth == 0:
            return
        _depth = 1
    _leave()


class QuietHold:
    """fd 2 held quiet from now until :meth:`release` (idempotent) or ``max_s``, whichever comes first.

    MediaPipe starts its graph's threads when the graph is built and they log a moment later, so the
    quiet period must span from construction to the first frame rather than one call."""

    def __init__(self, max_s: float = 5.0) -> None:
        self._held = not _show_all
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if self._held:
            _enter()
            self._timer = threading.Timer(max_s, self.release)
            self._timer.daemon = True
            self._timer.start()

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        if self._timer is not None:
            self._timer.cancel()
        _leave()


@contextlib.contextmanager
def opencv_quiet() -> Iterator[None]:
    """Silence OpenCV's own log lines for the block (a webcam probe's "can't open camera by index"):
    the one-line error that follows says what failed; ``--debug`` shows them."""
    if _show_all:
        yield
        return
    import cv2

    level = cv2.getLogLevel()
    cv2.setLogLevel(OPENCV_SILENT)
    try:
        yield
    finally:
        cv2.setLogLevel(level)
