"""Timing one callable: warm-up, then a run count set by a minimum duration; percentiles in ms."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Stats:
    runs: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Stats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        p50, p95, p99 = np.percentile(a, [50, 95, 99])
        return cls(int(a.size), float(p50), float(p95), float(p99), float(a.mean()))


def measure(fn: Callable[[], object], min_seconds: float, warmup: int = 3, min_runs: int = 10,
            max_runs: int = 100_000) -> Stats:
    """Call ``fn`` ``warmup`` times untimed, then until ``min_seconds`` and ``min_runs`` are both reached."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    start = time.perf_counter_ns()
    deadline = start + int(min_seconds * 1e9)
    while len(samples) < max_runs and (len(samples) < min_runs or time.perf_counter_ns() < deadline):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return Stats.of(samples)
