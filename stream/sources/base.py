"""What every source shares: a capture thread, a named back-pressure policy, frame hand-over.

Capture runs on its own thread so that inference never blocks it. Live sources use
``DROP_OLDEST`` (a one-slot hand-over: a slow consumer always gets the newest frame and every
frame it never took is counted as dropped); files use ``WAIT`` (a short queue; the reader waits
for the consumer, nothing is dropped).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.contract.types import Frame

log = logging.getLogger(__name__)


class SourceError(DfstreamError):
    """A source cannot be opened or read (after its retry budget, for live sources)."""


class Policy(StrEnum):
    DROP_OLDEST = "drop_oldest"
    WAIT = "wait"


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` sources use; tests inject their own."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def get(self, prop_id: int) -> float: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[], Capture]


@dataclass(frozen=True)
class SourceStatus:
    """An outage of a live source, written once it ends (or when the source gives up)."""

    source: str
    down_at: float
    up_at: float | None
    attempts: int
    reason: str


def display_name(source: str) -> str:
    """A file source by its file name, others (webcam:0, rtsp://…) as they are; for people, not records."""
    return source if ":" in source.split("/")[0] else Path(source).name


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Any decoded picture (grey, BGRA, 16-bit) as BGR uint8 H×W×3: converted, never fatal."""
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        else:
            image = (image >> (8 * (image.dtype.itemsize - 1))).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class ThreadedSource:
    """Base of all sources: subclasses implement ``_produce`` and call ``_emit`` per frame."""

    def __init__(self, name: str, policy: Policy, wake: threading.Event | None = None) -> None:
        self.name = name
        self.policy = policy
        self.fps: float = 0.0
        self.frames_read = 0
        self.dropped = 0
        self.statuses: collections.deque[SourceStatus] = collections.deque()
        self._wake = wake or threading.Event()
        self._items: collections.deque[Frame] = collections.deque()
        self._capacity = 1  # WAIT: the reader decodes the next frame while the consumer works on this one
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: SourceError | None = None
        self._thread = threading.Thread(target=self._main, name=f"source:{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def describe(self) -> str:
        """One start-up line: what this source is and how it is read."""
        return f"{display_name(self.name)}: {self.policy.name.lower().replace('_', ' ')}"

    def set_wake(self, wake: threading.Event) -> None:
        self._wake = wake

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def poll(self) -> Frame | None:
        """The next frame if one is ready; raises the source's error once its frames are used up."""
        with self._cond:
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
            if self._done and self._error is not None:
                raise self._error
            return None

    @property
    def exhausted(self) -> bool:
        with self._cond:
            return self._done and not self._items and self._error is None

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)

    # -- producer side ---------------------------------------------------------------------------
    def _produce(self) -> None:
        raise NotImplementedError

    def _wait_for_space(self) -> None:
        """WAIT policy: decode only once the consumer took the last frame, so a frame's capture
        time is not older than the frame the consumer is working on."""
        with self._cond:
            self._wait_locked()

    def _wait_locked(self) -> None:
        while len(self._items) >= self._capacity and not self._stop.is_set():
            self._cond.wait(timeout=0.1)

    def _emit(self, image: np.ndarray, decode_ms: float) -> bool:
        """Hand one picture over; False when the source is being closed."""
        frame = Frame(
            source=self.name,
            frame_id=self.frames_read,
            ts=time.time(),
            t_capture_ns=time.perf_counter_ns(),
            image=to_bgr(image),
            decode_ms=decode_ms,
        )
        self.frames_read += 1
        with self._cond:
            if self.policy is Policy.WAIT:
                self._wait_locked()
            elif len(self._items) >= self._capacity:
                self._items.popleft()
                self.dropped += 1
            if self._stop.is_set():
                return False
            self._items.append(frame)
        self._wake.set()
        return True

    def _main(self) -> None:
        try:
            self._produce()
        except SourceError as exc:
            self._error = exc
        except Exception as exc:  # a capture backend bug must end this source, not the process
            log.exception("%s: capture failed", self.name)
            self._error = SourceError(f"source {self.name}: capture failed ({exc})")
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()
            self._wake.set()


def timed_read(capture: Capture) -> tuple[np.ndarray | None, float]:
    """One ``read()`` and how long it took in ms; None when the capture returned nothing."""
    t0 = time.perf_counter()
    ok, image = capture.read()
    ms = (time.perf_counter() - t0) * 1000.0
    return (image if ok and image is not None and image.size else None), ms
