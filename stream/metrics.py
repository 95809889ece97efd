"""Prometheus text exposition of a running pipeline (``GET /metrics``), written without a client library."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dfstream.stream.records import STAGES

BUCKETS_MS: tuple[float, ...] = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000, 2500)


class StageHistograms:
    """Cumulative latency histograms per stage (Prometheus semantics: counters never go down)."""

    def __init__(self, buckets: Sequence[float] = BUCKETS_MS) -> None:
        self.buckets = tuple(buckets)
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, stage: str, ms: float) -> None:
        with self._lock:
            counts = self._counts.setdefault(stage, [0] * (len(self.buckets) + 1))
            for i, edge in enumerate(self.buckets):
                if ms <= edge:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[stage] = self._sums.get(stage, 0.0) + ms

    def lines(self, name: str) -> list[str]:
        out = [f"# HELP {name} Per-frame latency of each pipeline stage in milliseconds.",
               f"# TYPE {name} histogram"]
        with self._lock:
            for stage in sorted(self._counts, key=lambda s: (s not in STAGES, s)):
                counts = self._counts[stage]
                for edge, c in zip(self.buckets, counts, strict=False):
                    out.append(f'{name}_bucket{{stage="{stage}",le="{edge:g}"}} {c}')
                out.append(f'{name}_bucket{{stage="{stage}",le="+Inf"}} {counts[-1]}')
                out.append(f'{name}_sum{{stage="{stage}"}} {self._sums[stage]:.3f}')
                out.append(f'{name}_count{{stage="{stage}"}} {counts[-1]}')
        return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def prometheus_text(
    frames: dict[str, int],
    dropped: dict[str, int],
    fps: dict[str, float],
    histograms: StageHistograms,
    peers: int,
    provider: str,
) -> str:
    lines = [
        "# HELP dfstream_frames_total Frames processed per source.",
        "# TYPE dfstream_frames_total counter",
        *(f'dfstream_frames_total{{source="{_label(s)}"}} {n}' for s, n in sorted(frames.items())),
        "# HELP dfstream_dropped_frames_total Frames a live source dropped because the pipeline was busy.",
        "# TYPE dfstream_dropped_frames_total counter",
        *(f'dfstream_dropped_frames_total{{source="{_label(s)}"}} {n}' for s, n in sorted(dropped.items())),
        "# HELP dfstream_fps Processed frames per second per source (smoothed).",
        "# TYPE dfstream_fps gauge",
        *(f'dfstream_fps{{source="{_label(s)}"}} {v:.2f}' for s, v in sorted(fps.items())),
        *histograms.lines("dfstream_stage_latency_ms"),
        "# HELP dfstream_active_peers WebRTC peers connected now.",
        "# TYPE dfstream_active_peers gauge",
        f"dfstream_active_peers {peers}",
        "# HELP dfstream_model_info The ONNX Runtime provider the models run on.",
        "# TYPE dfstream_model_info gauge",
        f'dfstream_model_info{{provider="{_label(provider)}"}} 1',
    ]
    return "\n".join(lines) + "\n"
