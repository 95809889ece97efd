"""``dfstream bench soak``: one looping paced stream for N minutes; RSS and p99 per minute, drift.

Drift compares the last interval with the first full one: RSS growth in %, p99 change in %.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.stream.contract.types import Frame
from dfstream.stream.model_set import ModelSet
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import ScoreRecord
from dfstream.stream.run_config import RunConfig
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import FileSource

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


class IntervalProbe:
    """A sink that keeps capture→score totals per interval and samples RSS when each interval closes."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.rows: list[dict[str, float]] = []
        self._totals: list[float] = []
        self._start = time.perf_counter()
        self._lock = threading.Lock()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        if records:
            self._totals.append(records[0].latency_ms["total"])
        if time.perf_counter() - self._start >= self.interval_s * (len(self.rows) + 1):
            self._close_interval()

    def _close_interval(self) -> None:
        a = np.asarray(self._totals) if self._totals else np.asarray([np.nan])
        self.rows.append({
            "minute": len(self.rows) + 1,
            "frames": float(len(self._totals)),
            "rss_mb": rss_mb(),
            "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)),
        })
        self._totals = []

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class SoakResult:
    intervals: list[dict[str, float]]
    rss_growth_pct: float
    p99_drift_pct: float
    interval_s: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def soak(models_dir: Path, clip: Path, minutes: float, device: str = "auto", interval_s: float = 60.0,
         precision: str = "fp32") -> SoakResult:
    config = RunConfig(sources=(str(clip),), models_dir=models_dir, device=device, precision=precision,
                       realtime=True, loop=True)  # as `dfstream run --realtime --loop` resolves it
    models = ModelSet.load(models_dir, device, precision, frame_on_lane=config.frame_lane)
    source = FileSource(clip, realtime=True, loop=True)
    probe = IntervalProbe(interval_s)
    pipeline = Pipeline(models, [source], SinkSet([probe]), config.pipeline_options())
    pipeline.run(duration_s=minutes * 60.0, stop=threading.Event())
    rows = probe.rows
    if len(rows) < 2:
        return SoakResult(rows, float("nan"), float("nan"), interval_s)
    first, last = rows[0], rows[-1]
    return SoakResult(
        intervals=rows,
        rss_growth_pct=100.0 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"],
        p99_drift_pct=100.0 * (last["p99_ms"] - first["p99_ms"]) / first["p99_ms"],
        interval_s=interval_s,
    )
