"""End-of-run summary: per track frames, mean/max score and share flagged; fps, drops, latency."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dfstream.stream.prometheus import PipelineMetrics
from dfstream.stream.records import STAGES, ScoreRecord
from dfstream.stream.sources.base import display_name

LATENCY_WINDOW = 20_000
"""Latency samples kept per stage (the most recent), so a run of weeks holds bounded memory."""

SUMMARY_STAGES = (*STAGES, "sink")


def stop_reason(stop: threading.Event, start: float, duration_s: float | None) -> str | None:
    """Why a loop that began at ``start`` (``time.perf_counter()``) should stop now, or None."""
    if stop.is_set():
        return "signal"
    if duration_s is not None and time.perf_counter() - start >= duration_s:
        return "duration"
    return None


class FrameRates:
    """Each source's frame rate as scored, over recent frames (the views' header).

    The intervals are smoothed, not their inverses: the mean of 1/interval overstates the rate when
    frames arrive unevenly (a paced 30 fps file with drops read 34-40 fps)."""

    def __init__(self) -> None:
        self._rates: dict[str, tuple[float, float]] = {}
        """source → (time of its last frame, smoothed interval in seconds; 0 before a second frame)."""

    def tick(self, source: str, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        last, interval = self._rates.get(source, (now, 0.0))
        if now > last:
            interval = 0.9 * interval + 0.1 * (now - last) if interval else now - last
        self._rates[source] = (now, interval)
        return 1.0 / interval if interval else 0.0

    def forget(self, source: str) -> None:
        self._rates.pop(source, None)


@dataclass
class _TrackStats:
    frames: int = 0
    score_sum: float = 0.0
    score_max: float = 0.0
    flagged: int = 0


@dataclass
class SourceStats:
    frames: int = 0
    frames_without_face: int = 0
    dropped: int = 0
    outages: int = 0
    error: str | None = None


@dataclass
class RunSummary:
    """Collected while running; ``to_dict`` and ``text`` when done."""

    provider: str = ""
    sources: dict[str, SourceStats] = field(default_factory=lambda: defaultdict(SourceStats))
    tracks: dict[tuple[str, int], _TrackStats] = field(default_factory=lambda: defaultdict(_TrackStats))
    latency: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(lambda: deque(maxlen=LATENCY_WINDOW)))
    metrics: PipelineMetrics = field(default_factory=PipelineMetrics)
    elapsed_s: float = 0.0
    stopped_by: str = "end of input"
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)
    """Counters of the event store, webhooks and MQTT (sent, retried, dropped…), by output name."""

    def forget(self, source: str) -> None:
        """Drop a source that left a server (a browser peer): its counts, tracks and metric series."""
        self.sources.pop(source, None)
        for key in [k for k in self.tracks if k[0] == source]:
            del self.tracks[key]
        self.metrics.forget(source)

    def add_frame(self, source: str, records: list[ScoreRecord]) -> None:
        stats = self.sources[source]
        stats.frames += 1
        if not records:
            stats.frames_without_face += 1
        for r in records:
            t = self.tracks[(source, r.track_id)]
            t.frames += 1
            t.score_sum += r.score
            t.score_max = max(t.score_max, r.score)
            t.flagged += r.label == "fake"
        if records:
            for stage, ms in records[0].latency_ms.items():
                self.latency[stage].append(ms)
                self.metrics.observe(stage, ms)

    def add_sink_time(self, ms: float) -> None:
        self.latency["sink"].append(ms)
        self.metrics.observe("sink", ms)

    def to_dict(self) -> dict[str, Any]:
        frames = sum(s.frames for s in self.sources.values())
        total = np.asarray(self.latency.get("total", []), dtype=np.float64)

        def pct(q: float, values: np.ndarray) -> float | None:
            return round(float(np.percentile(values, q)), 2) if values.size else None

        return {
            "provider": self.provider,
            "elapsed_s": round(self.elapsed_s, 3),
            "frames": frames,
            "fps": round(frames / self.elapsed_s, 2) if self.elapsed_s > 0 else None,
            "stopped_by": self.stopped_by,
            "sources": {name: vars(s) for name, s in self.sources.items()},
            "latency_ms": {
                "capture_to_score_p50": pct(50, total),
                "capture_to_score_p95": pct(95, total),
                "capture_to_score_p99": pct(99, total),
                "stage_p50": {k: pct(50, np.asarray(self.latency[k])) for k in SUMMARY_STAGES if self.latency.get(k)},
            },
            "tracks": [
                {
                    "source": src,
                    "track_id": tid,
                    "frames": t.frames,
                    "mean_score": round(t.score_sum / t.frames, 4),
                    "max_score": round(t.score_max, 4),
                    "share_flagged": round(t.flagged / t.frames, 4),
                }
                for (src, tid), t in sorted(self.tracks.items())
                if t.frames
            ],
            "outputs": self.outputs,
        }

    def text(self) -> str:
        d = self.to_dict()
        lat = d["latency_ms"]
        latency = (f"  capture→score latency p50 {lat['capture_to_score_p50']} ms, p95 {lat['capture_to_score_p95']} "
                   f"ms, p99 {lat['capture_to_score_p99']} ms") if lat["capture_to_score_p50"] is not None else (
            "  capture→score latency: no frame was scored")
        lines = [
            f"dfstream summary: {d['frames']} frames in {d['elapsed_s']:.1f} s ({d['fps'] or 0:.1f} fps) "
            f"on {d['provider']}; stopped by {d['stopped_by']}",
            latency,
        ]
        for name, s in d["sources"].items():
            err = ", failed" if s["error"] else ""  # its error is logged when it happens and ends the run
            lines.append(
                f"  source {name}: {s['frames']} frames, {s['frames_without_face']} without a face, "
                f"{s['dropped']} dropped, {s['outages']} outages{err}"
            )
        if d["tracks"]:
            lines.append("  track                         frames  mean score  max score  flagged")
            for t in d["tracks"]:
                label = f"{display_name(t['source'])}#{t['track_id']}"
                lines.append(
                    f"  {label[-28:]:<28} {t['frames']:>7}  {t['mean_score']:>10.3f}  {t['max_score']:>9.3f}  "
                    f"{t['share_flagged']:>6.1%}"
                )
        else:
            lines.append("  no faces were scored")
        for name, counts in d["outputs"].items():
            lines.append(f"  {name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return "\n".join(lines)
