"""Turn a ``--source`` string into a source: a video file path, a webcam index, or an RTSP URL."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.native_logs import opencv_quiet
from dfstream.stream.sources.base import Capture, CaptureFactory, Policy, SourceError, SourceStatus, ThreadedSource
from dfstream.stream.sources.file import FileSource
from dfstream.stream.sources.live import LiveSource, RetryPolicy

__all__ = [
    "Capture",
    "CaptureFactory",
    "FileSource",
    "LiveSource",
    "Policy",
    "RetryPolicy",
    "SourceError",
    "SourceOptions",
    "SourceStatus",
    "ThreadedSource",
    "open_source",
    "redact",
    "source_name",
]

KINDS = "a video file path, a webcam index (0, 1, …) or an rtsp:// URL"
_FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_open_lock = threading.Lock()  # the FFmpeg options travel in a process-wide environment variable


@dataclass(frozen=True)
class SourceOptions:
    realtime: bool = False
    loop: bool = False
    """Files only: start again at the end (soak runs, kiosks)."""
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    webcam_factory: CaptureFactory | None = None
    """Tests inject a capture here; by default ``cv2.VideoCapture(index)``."""


def redact(url: str) -> str:
    """A URL fit for logs, metrics, records and pages: its userinfo (whatever characters the password
    holds) becomes ``***`` and its query and fragment are dropped; anything without ``://`` (a file, a
    webcam index) is returned as it is."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@")
    if at >= 0:  # cut at the last '@': an unescaped '/', '?' or '@' in a password must not leak either
        rest = "***@" + rest[at + 1:]
    return scheme + sep + rest.split("?", 1)[0].split("#", 1)[0]


def source_name(spec: str) -> str:
    """The name records give a source opened from ``spec`` without a name of its own."""
    text = spec.strip()
    if re.match(r"^rtsps?://", text, re.IGNORECASE):
        return redact(text)
    if text.isdigit():
        return f"webcam:{int(text)}"
    return str(Path(text))


def _rtsp_opener(url: str, options: SourceOptions) -> Capture:
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(options.read_timeout_s * 1000),
    ]
    with _open_lock:
        previous = os.environ.get(_FFMPEG_OPTIONS)
        os.environ[_FFMPEG_OPTIONS] = f"rtsp_transport;{options.rtsp_transport}"
        try:
            return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        finally:
            if previous is None:
                del os.environ[_FFMPEG_OPTIONS]
            else:
                os.environ[_FFMPEG_OPTIONS] = previous


def open_source(
    spec: str, options: SourceOptions | None = None, wake: threading.Event | None = None, name: str | None = None
) -> ThreadedSource:
    """A started-later source for ``spec``; a spec that names nothing usable fails here, before any work.

    ``name`` (a config file's camera name) replaces the name made from the spec in records and logs."""
    source = _open_source(spec, options or SourceOptions(), wake)
    if name is not None:
        source.name = name
    return source


def _open_source(spec: str, options: SourceOptions, wake: threading.Event | None) -> ThreadedSource:
    text = spec.strip()
    if re.match(r"^rtsps?://", text, re.IGNORECASE):
        return LiveSource(source_name(text), lambda: _rtsp_opener(text, options), options.retry, "RTSP stream", wake)
    if text.isdigit():
        index = int(text)
        factory = options.webcam_factory or (lambda: cv2.VideoCapture(index))
        source = LiveSource(source_name(text), factory, options.retry, f"webcam {index}", wake)
        with opencv_quiet():
            opened = source.probe()
        if not opened:
            raise SourceError(f"source webcam:{index}: webcam {index} did not open")
        return source
    if re.fullmatch(r"-\d+", text) and not Path(text).exists():
        raise InputPathError(f"source {text!r}: a webcam index is 0 or more (a file of that name does not exist)")
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        raise InputPathError(f"source {redact(spec)!r}: unknown kind; expected {KINDS}")
    if not text:
        raise InputPathError(f"source {spec!r}: empty; expected {KINDS}")
    return FileSource(Path(text), realtime=options.realtime, loop=options.loop, wake=wake)
