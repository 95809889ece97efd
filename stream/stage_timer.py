"""Per-record stage latencies, keyed by ``STAGES`` so that no stage can be left out or misspelt."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from dfstream.stream.records import STAGES

TICK_STAGES: tuple[str, ...] = ("crop", "frame_cnn", "clip_encoder", "clip_head", "scoring")
"""Stages a tick runs once over all its faces: each record of the tick carries the batch's time."""
FACE_STAGES: tuple[str, ...] = tuple(s for s in STAGES if s not in TICK_STAGES)
"""Stages each record measures for itself (its frame's decode, queue, faces, and capture to record)."""


class TickTimer:
    """The milliseconds of one tick's batched stages, then each record's own stages beside them."""

    def __init__(self) -> None:
        self._ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.set(name, (time.perf_counter() - t) * 1000.0)

    def set(self, name: str, ms: float) -> None:
        if name not in TICK_STAGES:
            raise KeyError(f"{name!r} is not a batched stage {TICK_STAGES}")
        self._ms[name] = ms

    def record(self, **own: float) -> dict[str, float]:
        """A record's ``latency_ms``: the tick's stages and ``own`` (each of ``FACE_STAGES``), in ``STAGES`` order."""
        if set(own) != set(FACE_STAGES) or set(self._ms) != set(TICK_STAGES):
            raise KeyError(f"stages given {sorted({*own, *self._ms})}, expected {list(STAGES)}")
        merged = self._ms | own
        return {name: merged[name] for name in STAGES}
