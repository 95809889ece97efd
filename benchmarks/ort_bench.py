"""ONNX Runtime's CPU settings measured, not guessed: each model alone (batch 1, interleaved) and
the whole paced pipeline, per setting, on the same models and clip."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.benchmarks.timing import Stats, measure_interleaved
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import ModelSet
from dfstream.stream.ort_sessions import DEFAULT_ORT, OrtSettings
from dfstream.stream.run_config import RunConfig

log = logging.getLogger(__name__)

VARIANTS: dict[str, OrtSettings] = {
    "default": DEFAULT_ORT,
    "1 thread": dataclasses.replace(DEFAULT_ORT, intra_threads=1),
    "2 threads": dataclasses.replace(DEFAULT_ORT, intra_threads=2),
    "spinning": dataclasses.replace(DEFAULT_ORT, spinning=True),
    "basic optimisation": dataclasses.replace(DEFAULT_ORT, optimization="basic"),
    "extended optimisation": dataclasses.replace(DEFAULT_ORT, optimization="extended"),
    "no arena": dataclasses.replace(DEFAULT_ORT, arena=False),
    "denormals as zero": dataclasses.replace(DEFAULT_ORT, denormals_zero=True),
}


def _inputs(models: ModelSet, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for m in (models.frame, models.encoder, models.head):
        shape = [d if isinstance(d, int) else 1 for d in m.inputs[0].shape]
        out[m.metadata.role] = [rng.uniform(0, 1, shape).astype(m.inputs[0].dtype)]
    return out


def bench_ort(models_dir: Path, clip: Path, seconds: float, pipeline_s: float | None,
              variants: Sequence[str]) -> list[dict[str, Any]]:
    """One row per setting: p50 ms of each model (batch 1) and the paced pipeline's fps, drops and p99."""
    loaded = {name: ModelSet.load(models_dir, "cpu", settings=VARIANTS[name]) for name in variants}
    rng = np.random.default_rng(0)
    feeds = _inputs(next(iter(loaded.values())), rng)
    calls: dict[str, Callable[[], object]] = {
        f"{name}|{m.metadata.role}": (lambda m=m: m.run(*feeds[m.metadata.role]))  # type: ignore[misc]
        for name, models in loaded.items()
        for m in (models.frame, models.encoder, models.head)
    }
    stats: dict[str, Stats] = measure_interleaved(calls, seconds)
    rows: list[dict[str, Any]] = []
    for name in variants:
        row: dict[str, Any] = {"setting": name, **dataclasses.asdict(VARIANTS[name])}
        for role in ("frame_cnn", "clip_encoder", "clip_head"):
            row[f"{role}_p50_ms"] = round(stats[f"{name}|{role}"].p50_ms, 3)
        if pipeline_s is not None:
            cfg = RunConfig(sources=(str(clip),), models_dir=models_dir, device="cpu", window=False, realtime=True,
                            duration_s=pipeline_s, ort=VARIANTS[name])
            summary, _ = run_stream(cfg)
            d = summary.to_dict()
            row |= {"pipeline_fps": d["fps"], "pipeline_dropped": sum(s["dropped"] for s in d["sources"].values()),
                    "pipeline_p99_ms": d["latency_ms"]["capture_to_score_p99"]}
            log.info("%s: %.1f fps, p99 %s ms", name, d["fps"] or 0.0, d["latency_ms"]["capture_to_score_p99"])
        rows.append(row)
    return rows


def ort_markdown(rows: list[dict[str, Any]]) -> str:
    cols = ["setting", "frame_cnn_p50_ms", "clip_encoder_p50_ms", "clip_head_p50_ms", "pipeline_fps",
            "pipeline_dropped", "pipeline_p99_ms"]
    cols = [c for c in cols if any(c in r for r in rows)]
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
