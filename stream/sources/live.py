"""Live sources (webcam, RTSP): latest-frame hand-over and reconnect with capped exponential backoff.

A capture whose ``read()`` fails is never reused (OpenCV's FFmpeg capture does not recover):
it is released and a new one is opened. Each attempt is logged; each outage becomes a
``SourceStatus`` (down-at, up-at, attempts) once the source is back or gives up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2

from dfstream.stream.sources.base import Capture, Policy, SourceError, SourceStatus, ThreadedSource, timed_read

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int | None = 8
    """Reconnect attempts per outage before giving up; None retries forever."""
    base_s: float = 0.5
    cap_s: float = 8.0

    def delay(self, attempt: int) -> float:
        return float(min(self.cap_s, self.base_s * 2 ** max(attempt - 1, 0)))

    def exhausted(self, attempt: int) -> bool:
        return self.attempts is not None and attempt >= self.attempts


class LiveSource(ThreadedSource):
    """Reads an opener's capture until it fails, then reopens it under a RetryPolicy."""

    def __init__(
        self,
        name: str,
        opener: Callable[[], Capture],
        retry: RetryPolicy,
        what: str,
        wake: threading.Event | None = None,
    ) -> None:
        super().__init__(name, Policy.DROP_OLDEST, wake)
        self._opener = opener
        self.retry = retry
        self._what = what
        self._pending: Capture | None = None

    def describe(self) -> str:
        attempts = "forever" if self.retry.attempts is None else f"up to {self.retry.attempts} times"
        return f"{self.name}: {self._what}, newest frame wins, reconnects {attempts} per outage"

    def probe(self) -> bool:
        """Open now (in the caller's thread) so a device that does not exist fails at start."""
        self._pending = self._open()
        return self._pending is not None

    def _open(self) -> Capture | None:
        if self._pending is not None:
            capture, self._pending = self._pending, None
            return capture
        try:
            capture = self._opener()
        except Exception as exc:  # backends raise on odd URLs instead of returning closed captures
            log.warning("%s: open failed: %s", self.name, exc)
            return None
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _produce(self) -> None:
        attempt = 0
        down_at: float | None = None
        reason = "did not open"
        ever_opened = False
        while not self.stopping:
            capture = self._open()
            if capture is None:
                attempt += 1
                if self.retry.exhausted(attempt):
                    self._outage(down_at, None, attempt, reason)
                    verb = "went down" if ever_opened else "did not open"
                    raise SourceError(f"source {self.name}: {self._what} {verb}; gave up after {attempt} attempts")
                wait = self.retry.delay(attempt)
                budget = "∞" if self.retry.attempts is None else str(self.retry.attempts)
                log.warning("%s: %s unavailable, attempt %d/%s, next in %.1fs", self.name, self._what, attempt,
                            budget, wait)
                if self._stop.wait(wait):
                    break
                continue
            if down_at is not None:
                self._outage(down_at, time.time(), attempt, reason)
                log.info("%s: back after %d attempts", self.name, attempt)
            ever_opened = True
            attempt = 0
            fps = float(capture.get(cv2.CAP_PROP_FPS))
            self.fps = fps if 1.0 <= fps <= 240.0 else self.fps or 30.0
            try:
                reason = self._read_until_failure(capture)
            finally:
                capture.release()
            if not self.stopping:
                down_at = time.time()
                log.warning("%s: %s", self.name, reason)

    def _read_until_failure(self, capture: Capture) -> str:
        while not self.stopping:
            image, ms = timed_read(capture)
            if image is None:
                return "read failed or timed out"
            if not self._emit(image, ms):
                break
        return "closed"

    def _outage(self, down_at: float | None, up_at: float | None, attempts: int, reason: str) -> None:
        if down_at is None:
            return
        self.statuses.append(SourceStatus(self.name, down_at, up_at, attempts, reason))
        self._wake.set()
