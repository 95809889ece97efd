"""Model A beside the frames: its own thread for live and paced sources.

Inside a tick model A (20-30 ms here) is the longest stage, and every frame it runs on waits for it.
On the lane a tick hands over the crops of the tracks whose turn it is, when the lane is free, and
goes on; the scores reach their tracks at the first tick after they are ready. So no frame waits for
model A, its score lags by a few frames, and it uses the core that a sequential tick leaves idle
(benchmarks/RESULTS.md §5). A track whose turn comes while the lane is busy keeps its last score.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dfstream.stream.model_set import CropScores

log = logging.getLogger(__name__)

LANE_NICE = 10
"""How much the lane's thread lowers its own priority: when the frames' path (faces, clip encoder) and
model A both want the cores, the frames go first and model A takes what is left. With model A on one
intra-op thread, this took four paced cameras on 2 cores from 112–115 to 117–118 fps scored and from
35–60 to 14–23 frames dropped of 960 (benchmarks/RESULTS.md §5)."""


def lower_own_priority(nice: int = LANE_NICE) -> None:
    """Raise the calling thread's nice value (on Linux a thread's own; allowed without privileges)."""
    if not hasattr(os, "setpriority"):
        return
    me = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + nice))
    except OSError as exc:
        log.debug("lane priority unchanged: %s", exc)


class FrameScored(Protocol):
    """What the lane writes into: a track's latest model A score and attention map."""

    p_frame: float | None
    attention_map: np.ndarray | None


def apply_frame_scores(states: Sequence[FrameScored], crops: CropScores) -> None:
    for i, state in enumerate(states):
        state.p_frame = float(crops.p_frame[i])
        if crops.attention is not None:
            state.attention_map = crops.attention[i]


@dataclass(frozen=True)
class _Job:
    states: Sequence[FrameScored]
    future: Future[CropScores]


class FrameLane:
    """One model A run in flight at a time, on one thread (a session never runs twice at once)."""

    def __init__(self, score: Callable[[Sequence[np.ndarray], Sequence[np.ndarray], bool], CropScores]) -> None:
        self._score = score
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dfstream-model-a",
                                        initializer=lower_own_priority)
        self._job: _Job | None = None

    def submit(self, states: Sequence[FrameScored], crops: Sequence[np.ndarray], explain: bool) -> bool:
        """Start model A on ``crops`` for ``states`` unless a run is in flight; whether it started."""
        if self._job is not None or not crops:
            return False
        self._job = _Job(list(states), self._pool.submit(self._score, list(crops), [], explain))
        return True

    def collect(self) -> float:
        """Apply a finished run's scores to its tracks; its model A time in ms, 0 when none finished."""
        job = self._job
        if job is None or not job.future.done():
            return 0.0
        self._job = None
        crops = job.future.result()
        apply_frame_scores(job.states, crops)
        return crops.frame_ms

    def close(self) -> None:
        self._pool.shutdown(wait=True)
