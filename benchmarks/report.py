"""Benchmark reports: JSON for machines, a markdown table and PNG plots for people."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dfstream.benchmarks.models_bench import ModelRow
from dfstream.benchmarks.pipeline_bench import PipelineRow

log = logging.getLogger(__name__)

PIPELINE_STAGES = ("decode", "queue", "faces", "crop", "frame_cnn", "clip_encoder", "clip_head", "scoring", "sink")


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def models_markdown(rows: Sequence[ModelRow], ratios: dict[str, float], incremental_ratio: float | None) -> str:
    lines = [
        "| model | runtime | provider | precision | batch | p50 ms | p95 ms | p99 ms | items/s | runs |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        s = r.stats
        lines.append(
            f"| {r.model} | {r.runtime} | {r.provider} | {r.precision} | {r.batch} | {_f(s.p50_ms)} | "
            f"{_f(s.p95_ms)} | {_f(s.p99_ms)} | {_f(r.items_per_s, 1)} | {s.runs} |"
        )
    if ratios:
        lines += ["", "| ratio (p50, CPU fp32) | value |", "| --- | ---: |"]
        lines += [f"| {k} | {_f(v, 3)} |" for k, v in ratios.items()]
    if incremental_ratio is not None:
        lines += ["", f"Naive clip scoring (16 encoder passes + head) costs **{_f(incremental_ratio, 1)}×** the "
                  "incremental one (1 encoder pass + head) per frame."]
    return "\n".join(lines) + "\n"


def pipeline_markdown(rows: Sequence[PipelineRow]) -> str:
    stage_cols = " | ".join(f"{s} p50" for s in PIPELINE_STAGES)
    lines = [
        f"| mode | streams | frames | fps | slowest stream fps | dropped | capture→score p50 / p95 / p99 ms | "
        f"{stage_cols} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |" + " ---: |" * len(PIPELINE_STAGES),
    ]
    for r in rows:
        c = r.capture_to_score
        stages = " | ".join(_f(r.stages.get(s, {}).get("p50", float("nan"))) for s in PIPELINE_STAGES)
        lines.append(
            f"| {r.mode} | {r.streams} | {r.frames} | {_f(r.fps, 1)} | {_f(r.slowest_stream_fps, 1)} | {r.dropped} | "
            f"{_f(c['p50'], 1)} / {_f(c['p95'], 1)} / {_f(c['p99'], 1)} | {stages} |"
        )
    return "\n".join(lines) + "\n"


def cpu_budget_markdown(rows: Sequence[PipelineRow], top: int = 6) -> str:
    """Cores each thread group used per row (CPU seconds per second of the run), largest first."""
    lines = ["| mode | streams | cores used | by thread group (cores) |", "| --- | ---: | ---: | --- |"]
    for r in rows:
        if r.cpu is None:
            continue
        groups = ", ".join(f"{name} {_f(v, 2)}" for name, v in list(r.cpu["cores"].items())[:top])
        lines.append(f"| {r.mode} | {r.streams} | {_f(r.cpu['total_cores'], 2)} | {groups} |")
    return "\n".join(lines) + "\n"


def soak_markdown(result: dict[str, Any]) -> str:
    lines = ["| interval | frames | RSS MB | p50 ms | p99 ms |", "| ---: | ---: | ---: | ---: | ---: |"]
    for row in result["intervals"]:
        lines.append(f"| {int(row['minute'])} | {int(row['frames'])} | {_f(row['rss_mb'], 1)} | "
                     f"{_f(row['p50_ms'], 1)} | {_f(row['p99_ms'], 1)} |")
    lines.append("")
    lines.append(f"RSS growth first→last interval: **{_f(result['rss_growth_pct'], 2)} %**; "
                 f"p99 drift: **{_f(result['p99_drift_pct'], 2)} %**.")
    return "\n".join(lines) + "\n"


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable, allow_nan=True) + "\n", encoding="utf-8")


def _jsonable(obj: object) -> object:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"not serialisable: {type(obj).__name__}")


def pipeline_plots(rows: Sequence[PipelineRow], out_dir: Path) -> list[Path]:
    """Latency CDF per stage, stacked per-stage p50 bars, p99 vs streams. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        log.warning("matplotlib is not installed: no plots (install the 'train' extra)")
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    base = next((r for r in rows if r.streams == 1 and r.mode == "paced"), rows[0])

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for stage in (*PIPELINE_STAGES, "total"):
        values = np.sort(np.asarray(base.samples.get(stage, []), dtype=np.float64))
        if values.size:
            ax.plot(values, np.arange(1, values.size + 1) / values.size, label=stage)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set(xlabel="latency (ms)", ylabel="share of frames", title=f"Latency CDF per stage ({base.mode}, 1 stream)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "latency_cdf.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels = [f"{r.mode}\n{r.streams} stream{'s' if r.streams > 1 else ''}" for r in rows]
    bottom = np.zeros(len(rows))
    for stage in PIPELINE_STAGES:
        vals = np.array([r.stages.get(stage, {}).get("p50", 0.0) for r in rows])
        ax.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    ax.set(ylabel="p50 ms per frame", title="Per-stage latency (p50, stacked)")
    ax.legend(fontsize=7)
    written.append(_save(fig, out_dir / "stages_stacked.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in dict.fromkeys(r.mode for r in rows):
        sel = [r for r in rows if r.mode == mode]
        ax.plot([r.streams for r in sel], [r.capture_to_score["p99"] for r in sel], marker="o", label=mode)
    ax.set(xlabel="streams in one process", ylabel="capture→score p99 (ms)", title="p99 vs number of streams")
    ax.legend()
    ax.grid(alpha=0.3)
    written.append(_save(fig, out_dir / "p99_vs_streams.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
