"""The sink dispatcher: a slow sink never delays a live source's scoring (drops are counted), while a
file read as fast as it is scored keeps every frame, and events stay in order with the frames."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from dfstream.stream.dispatch import SinkDispatcher
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sinks import SinkSet
from dfstream.stream.summary import RunSummary
from dfstream.stream.types import Frame

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


def test_live_frames_never_wait_and_the_oldest_are_dropped_and_counted() -> None:
    sink = SlowSink(0.02)
    dispatch = SinkDispatcher(SinkSet([sink]), RunSummary(), capacity=4)
    t0 = time.perf_counter()
    for i in range(100):
        dispatch.write(_frame(i), [], "", wait=False)
    queued_in = time.perf_counter() - t0
    dispatch.close()
    assert queued_in < 0.5  # 100 frames of a 20 ms sink would take 2 s if scoring waited
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
