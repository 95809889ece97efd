"""Where records go: JSON lines, annotated video, a live window. One failing sink never stops the others.

Output paths are opened (or created) when the sink is built, so an unwritable path is refused
before any model is loaded or frame is read.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, TextIO

import av
import cv2

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.types import Frame
from dfstream.stream.overlay import annotate
from dfstream.stream.records import ScoreRecord, to_json

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None: ...

    def event(self, data: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written, with one line naming it."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputPathError(f"output {path}: is a folder")
    if not parent.exists():
        raise InputPathError(f"output {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputPathError(f"output {path}: not writable")


class JsonlSink:
    """One JSON object per line, flushed per frame, so a killed process loses nothing it scored."""

    def __init__(self, target: str) -> None:
        self._own = target != "-"
        if self._own:
            path = Path(target)
            check_writable(path)
            try:
                self._fh: TextIO = path.open("w", encoding="utf-8")
            except OSError as exc:
                raise InputPathError(f"output {path}: {exc.strerror}") from None
        else:
            self._fh = sys.stdout
        self.lines = 0
        self._lock = threading.Lock()  # events arrive from the event store's thread too

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        if records:
            self._put("".join(to_json(r) + "\n" for r in records), len(records))

    def event(self, data: dict[str, Any]) -> None:
        self._put(to_json(data) + "\n", 1)

    def _put(self, text: str, lines: int) -> None:
        with self._lock:
            self._fh.write(text)
            self._fh.flush()
            self.lines += lines

    def close(self) -> None:
        self._fh.flush()
        if self._own:
            self._fh.close()


class Mp4Writer:
    """H.264 in fragmented MP4, opened at the first picture's size: what was written before a crash
    or kill still plays (a keyframe, so a fragment on disk, every second)."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self._container: Any = None
        self._stream: Any = None
        self.frames = 0

    def _open(self, width: int, height: int) -> None:
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
        self._container = av.open(str(self.path), mode="w", options=options)
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = width - width % 2
        self._stream.height = height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "veryfast", "crf": "23", "g": str(max(1, round(self.fps)))}

    def write(self, image: Any) -> None:
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        image = image[: self._stream.height, : self._stream.width]
        picture = av.VideoFrame.from_ndarray(image, format="bgr24")
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None


class VideoSink:
    """H.264 MP4 of the annotated frames of one source."""

    def __init__(self, path: Path, source: str, fps: float) -> None:
        check_writable(path)
        path.touch()
        self.path = path
        self.source = source
        self._writer = Mp4Writer(path, fps)

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        if frame.source == self.source:
            self._writer.write(annotate(frame.image, records, header))

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        self._writer.close()


class WindowSink:
    """A live OpenCV window per source; 'q' or Esc asks the run to stop."""

    def __init__(self) -> None:
        self.quit_requested = False

    @staticmethod
    def available() -> bool:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        cv2.imshow(f"dfstream {frame.source}", annotate(frame.image, records, header))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        cv2.destroyAllWindows()


class SinkSet:
    """Fan-out that isolates failures: a sink that raises is logged once and switched off."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.all = tuple(sinks)
        """Every sink it started with, failed ones included (for their counters)."""
        self.failed: list[str] = []

    def _guard(self, sink: Sink, what: str, call: Any) -> None:
        try:
            call()
        except Exception as exc:
            name = type(sink).__name__
            log.error("%s failed during %s and is switched off: %s", name, what, exc)
            self.failed.append(f"{name}: {exc}")
            if sink in self.sinks:  # events may fail it from the event store's thread at the same time
                self.sinks.remove(sink)

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        for sink in list(self.sinks):
            self._guard(sink, "write", lambda s=sink: s.write(frame, records, header))

    def event(self, data: dict[str, Any]) -> None:
        for sink in list(self.sinks):
            self._guard(sink, "event", lambda s=sink: s.event(data))

    def close(self) -> None:
        for sink in list(self.sinks):
            self._guard(sink, "close", sink.close)

    def add(self, sink: Sink) -> None:
        self.sinks.append(sink)
        self.all = (*self.all, sink)

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters of the outputs that keep them (event store, webhooks, MQTT), by output name."""
        return {s.name: s.stats() for s in self.all if hasattr(s, "stats") and hasattr(s, "name")}

    @property
    def quit_requested(self) -> bool:
        return any(isinstance(s, WindowSink) and s.quit_requested for s in self.sinks)
