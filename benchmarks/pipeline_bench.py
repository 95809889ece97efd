"""``dfstream bench pipeline``: the whole stream on a face clip, paced like a camera and as fast as possible.

Each run uses ``N`` copies of the clip as ``N`` streams in one process (one batch per tick across
streams) and writes JSON lines to a scratch file, so the sink stage is real.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfstream.benchmarks.cpu_budget import CpuBudget
from dfstream.benchmarks.timing import Stats
from dfstream.stream.local_run import run_stream
from dfstream.stream.run_config import RunConfig
from dfstream.stream.summary import SUMMARY_STAGES, RunSummary

log = logging.getLogger(__name__)

MODES = {"paced": True, "fast": False}
"""Mode name → ``realtime``: paced at the clip's fps with drops counted, or every frame as fast as possible."""


@dataclass(frozen=True)
class PipelineRow:
    mode: str
    streams: int
    frames: int
    elapsed_s: float
    fps: float
    dropped: int
    capture_to_score: dict[str, float]
    stages: dict[str, dict[str, float]]
    samples: dict[str, list[float]]
    """Per-stage latency samples (ms) for the plots."""
    slowest_stream_fps: float = 0.0
    """Frames scored per second by the stream that got the fewest: whether one starves."""
    cpu: dict[str, Any] | None = None
    """The run's CPU budget (``CpuBudget.to_dict``): cores used in all, and per thread group."""

    def to_dict(self, with_samples: bool = False) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "samples"}
        if with_samples:
            d["samples"] = self.samples
        return d


def _pcts(values: Sequence[float]) -> dict[str, float]:
    s = Stats.of(values)
    return {"p50": s.p50_ms, "p95": s.p95_ms, "p99": s.p99_ms}


def row_from_summary(mode: str, streams: int, summary: RunSummary, cpu: dict[str, Any] | None = None) -> PipelineRow:
    d = summary.to_dict()
    samples = {k: list(summary.latency[k]) for k in SUMMARY_STAGES if summary.latency.get(k)}
    return PipelineRow(
        mode=mode,
        streams=streams,
        frames=d["frames"],
        elapsed_s=d["elapsed_s"],
        fps=d["fps"] or 0.0,
        dropped=sum(s["dropped"] for s in d["sources"].values()),
        slowest_stream_fps=min((s["frames"] for s in d["sources"].values()), default=0) / max(d["elapsed_s"], 1e-9),
        capture_to_score=_pcts(samples.get("total", [])),
        stages={k: _pcts(v) for k, v in samples.items() if k != "total"},
        samples=samples,
        cpu=cpu,
    )


def clip_copies(folder: Path, clip: Path, count: int, stem: str) -> list[Path]:
    """``count`` copies of ``clip`` in ``folder``: one file per stream, so each gets its own name."""
    copies = [folder / f"{stem}{i}{clip.suffix}" for i in range(count)]
    for copy in copies:
        shutil.copyfile(clip, copy)
    return copies


def bench_pipeline(
    models_dir: Path,
    clip: Path,
    streams: Sequence[int],
    modes: Sequence[str],
    device: str = "auto",
    duration_s: float | None = None,
    precision: str = "fp32",
    stride: int | None = None,
    explain: bool = False,
    overlap: bool = True,
    frame_lane: bool = True,
) -> list[PipelineRow]:
    rows: list[PipelineRow] = []
    with tempfile.TemporaryDirectory(prefix="dfstream-bench-") as tmp:
        copies = clip_copies(Path(tmp), clip, max(streams), "stream")
        for mode in modes:
            for n in streams:
                cfg = RunConfig(
                    sources=tuple(str(c) for c in copies[:n]),
                    models_dir=models_dir,
                    device=device,  # type: ignore[arg-type]
                    precision=precision,  # type: ignore[arg-type]
                    stride=stride,
                    out=str(Path(tmp) / "scores.jsonl"),
                    window=False,
                    realtime=MODES[mode],
                    duration_s=duration_s,
                    explain=explain,
                    overlap=overlap,
                    frame_lane=frame_lane,
                )
                with CpuBudget() as budget:
                    summary, errors = run_stream(cfg)
                if errors:
                    log.warning("pipeline %s × %d: %s", mode, n, "; ".join(errors))
                row = row_from_summary(mode, n, summary, budget.to_dict())
                log.info("pipeline %s × %d: %.1f fps, p99 %.1f ms, %d dropped", mode, n, row.fps,
                         row.capture_to_score["p99"], row.dropped)
                rows.append(row)
    return rows
