"""Sinks off the hot path: the scoring loop hands each frame's records to a dispatcher thread.

JSON lines, the annotated video (annotation and H.264 encoding), the window and the server's
feeds then run beside scoring instead of inside its tick. The queue is bounded: a frame from a
source read as fast as it can be scored (a file without ``--realtime``) waits for room, so its
video and records stay complete; a frame from a live or paced source never waits: when the queue
is full the oldest waiting frame is dropped and counted. Events travel the same queue, so records
and the label changes between them keep their order.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from typing import Any

from dfstream.stream.contract.types import Frame
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sinks import SinkSet
from dfstream.stream.summary import RunSummary

QUEUE_FRAMES = 32
"""About one second of frames waiting for the sinks."""


class SinkDispatcher:
    def __init__(self, sinks: SinkSet, summary: RunSummary, capacity: int = QUEUE_FRAMES) -> None:
        self.sinks = sinks
        self.summary = summary
        self.capacity = capacity
        self.name = "sinks"
        self.dropped = 0
        self._items: collections.deque[tuple[str, Any]] = collections.deque()
        self._frames = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._main, name="sinks", daemon=True)
        self._thread.start()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str, wait: bool) -> None:
        """Queue one frame; ``wait`` (a source that must not lose frames) blocks while the queue is full."""
        with self._cond:
            while wait and self._frames >= self.capacity and not self._closing:
                self._cond.wait(0.1)
            if self._frames >= self.capacity:
                self._drop_oldest_frame()
            self._items.append(("frame", (frame, records, header)))
            self._frames += 1
            self._cond.notify_all()

    def event(self, data: dict[str, Any]) -> None:
        with self._cond:
            self._items.append(("event", data))
            self._cond.notify_all()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"dropped": self.dropped, "queued": self._frames}

    def close(self, timeout_s: float = 120.0) -> None:
        """Deliver what is queued (bounded by ``timeout_s``), then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    def _drop_oldest_frame(self) -> None:
        for i, (kind, _) in enumerate(self._items):
            if kind == "frame":
                del self._items[i]
                self._frames -= 1
                self.dropped += 1
                return

    def _main(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closing:
                    self._cond.wait()
                if not self._items:
                    return
                kind, item = self._items.popleft()
                if kind == "frame":
                    self._frames -= 1
                self._cond.notify_all()
            if kind == "event":
                self.sinks.event(item)
                continue
            frame, records, header = item
            t = time.perf_counter()
            self.sinks.write(frame, records, header)
            if records:
                self.summary.add_sink_time((time.perf_counter() - t) * 1000.0)
