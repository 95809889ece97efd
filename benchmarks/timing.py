"""Timing callables: warm-up, interleaved rounds, run counts set by a minimum duration; percentiles in ms."""

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


def measure_interleaved(fns: dict[str, Callable[[], object]], min_seconds: float, rounds: int = 8,
                        warmup: int = 3, min_runs: int = 10) -> dict[str, Stats]:
    """Time several callables in alternating short rounds, so that a machine whose speed drifts
    (other tenants, thermal limits) biases none of them; each gets about ``min_seconds`` in all."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    per_round = min_seconds / rounds
    for _ in range(rounds):
        for name, fn in fns.items():
            want = -(-min_runs // rounds)  # ceil: min_runs in all
            deadline = time.perf_counter_ns() + int(per_round * 1e9)
            n = 0
            while n < want or time.perf_counter_ns() < deadline:
                t0 = time.perf_counter_ns()
                fn()
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
                n += 1
    return {name: Stats.of(s) for name, s in samples.items()}
