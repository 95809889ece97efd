"""The sink dispatcher: a slow sink never delays a live source's scoring (drops are counted), while a
file read as fast as it is scored keeps every frame, and events stay in order with the frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from dfstream.stream.contract.types import Frame
from dfstream.stream.dispatch import SinkDispatcher
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sinks import SinkSet
from dfstream.stream.summary import RunSummary

IMAGE = np.zeros((8, 8, 3), np.uint8)


class SlowSink:
    """Takes ``delay_s`` per frame and remembers what it got, in order (a stand-in for a slow encoder)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.got: list[Any] = []
        self.lock = threading.Lock()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        time.sleep(self.delay_s)
        with self.lock:
            self.got.append(frame.frame_id)

    def event(self, data: dict[str, Any]) -> None:
        with self.lock:
            self.got.append(data["n"])

    def close(self) -> None:
        return None


def _frame(i: int) -> Frame:
    return Frame("cam", i, 1.0, 0, IMAGE)


class BlockedSink(SlowSink):
    """A sink that does not return until the test lets it."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.release = threading.Event()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        self.release.wait(30)
        super().write(frame, records, header)


def test_live_frames_never_wait_and_the_oldest_are_dropped_and_counted() -> None:
    """The mechanism, not a timing margin: with the sink blocked, all 100 live frames are handed over
    (none waits for it), the queue keeps the newest, and the rest are counted as dropped."""
    sink = BlockedSink()
    dispatch = SinkDispatcher(SinkSet([sink]), RunSummary(), capacity=4)
    scoring = threading.Thread(target=lambda: [dispatch.write(_frame(i), [], "", wait=False) for i in range(100)])
    scoring.start()
    scoring.join(30)
    handed_over_while_blocked = not scoring.is_alive() and not sink.got
    sink.release.set()
    dispatch.close()
    assert handed_over_while_blocked
    assert dispatch.dropped > 50 and len(sink.got) + dispatch.dropped == 100
    assert sink.got == sorted(sink.got) and sink.got[-1] == 99  # the newest always survives


def test_a_file_keeps_every_frame_and_events_keep_their_place() -> None:
    sink = SlowSink(0.002)
    dispatch = SinkDispatcher(SinkSet([sink]), RunSummary(), capacity=4)
    for i in range(50):
        dispatch.write(_frame(i), [], "", wait=True)
        if i % 10 == 9:
            dispatch.event({"type": "label", "n": f"after {i}"})
    dispatch.close()
    assert dispatch.dropped == 0
    expected: list[Any] = []
    for i in range(50):
        expected.append(i)
        if i % 10 == 9:
            expected.append(f"after {i}")
    assert sink.got == expected
