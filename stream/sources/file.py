"""Video files: every frame in order (``WAIT``), or paced at the file's fps with ``--realtime``."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.sources.base import Capture, Policy, SourceError, ThreadedSource, timed_read

log = logging.getLogger(__name__)


class FileSource(ThreadedSource):
    """Opens and decodes the first frame at construction, so a bad file fails before any work."""

    def __init__(
        self, path: Path, realtime: bool = False, loop: bool = False, wake: threading.Event | None = None
    ) -> None:
        super().__init__(str(path), Policy.DROP_OLDEST if realtime else Policy.WAIT, wake)
        self.realtime = realtime
        self.loop = loop
        self._path = path
        if not path.exists():
            raise InputPathError(f"source {path}: file not found")
        if not path.is_file():
            raise InputPathError(f"source {path}: not a file")
        if path.stat().st_size == 0:
            raise InputPathError(f"source {path}: file is empty")
        self._capture: Capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        first: np.ndarray | None = None
        if self._capture.isOpened():
            first, self._first_ms = timed_read(self._capture)
        if first is None:
            self._capture.release()
            raise SourceError(f"source {path}: not a readable video")
        self._first = first
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        self.frame_count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def describe(self) -> str:
        h, w = self._first.shape[:2]
        frames = f"{self.frame_count} frames" if self.frame_count > 0 else "length unknown"
        pacing = "paced in real time" if self.realtime else "read as fast as scored"
        looped = ", looped" if self.loop else ""
        shown = self._path.name if self.name == str(self._path) else self.name
        return f"{shown}: file {w}x{h}, {self.fps:.0f} fps, {frames}, {pacing}{looped}"

    def _produce(self) -> None:
        period = 1.0 / self.fps
        start = time.perf_counter()
        image: np.ndarray | None = self._first
        ms = self._first_ms
        index = 0
        try:
            while image is not None and not self.stopping:
                if self.realtime:
                    delay = start + index * period - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                if not self._emit(image, ms):
                    break
                index += 1
                if self.policy is Policy.WAIT:
                    self._wait_for_space()
                image, ms = timed_read(self._capture)
                if image is None and self.loop and index > 0:
                    self._capture.release()
                    self._capture = cv2.VideoCapture(str(self._path), cv2.CAP_FFMPEG)
                    image, ms = timed_read(self._capture)
        finally:
            self._capture.release()
        if image is None and not self.loop and 0 < self.frame_count and index < self.frame_count - 1:
            log.warning("%s: stream ended after %d of %d frames (truncated file?)", self.name, index, self.frame_count)
