"""The three benchmark runs behind ``dfstream bench``: each writes JSON + markdown (+ plots) into a folder."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dfstream.benchmarks.machine import cpu_times, file_hashes, machine_info, steal_pct
from dfstream.benchmarks.models_bench import bench_face_models, bench_models, clip_scoring_rows, ratios
from dfstream.benchmarks.pipeline_bench import bench_pipeline
from dfstream.benchmarks.report import (
    cpu_budget_markdown,
    models_markdown,
    pipeline_markdown,
    pipeline_plots,
    soak_markdown,
    write_json,
)
from dfstream.benchmarks.soak import soak
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.face_models import face_model_files, is_stream_folder
from dfstream.stream.gpu_options import CUDA
from dfstream.stream.model_set import model_files
from dfstream.stream.ort_sessions import select_providers

log = logging.getLogger(__name__)

PRODUCT_SIZES = {"frame": 224, "clip": 256}
DEFAULT_BENCH_MODELS = Path("cache") / "bench-models"


@dataclass(frozen=True)
class Written:
    markdown: str
    files: list[Path]


def bench_models_dir(models: Path | None) -> Path:
    """``models`` if given; else product-size graphs (untrained: latency does not depend on weights),
    exported once into ``cache/bench-models`` (needs the ``train`` extra)."""
    if models is not None:
        return models
    folder = DEFAULT_BENCH_MODELS
    try:
        model_files(folder)
        return folder
    except InputPathError:
        pass
    try:
        from dfstream.export.untrained import export_untrained
    except ImportError as exc:
        raise InputPathError(f"no --models given and cannot export product-size graphs here ({exc})") from None
    log.info("exporting product-size graphs (A %d², encoder %d²) into %s once", PRODUCT_SIZES["frame"],
             PRODUCT_SIZES["clip"], folder)
    export_untrained(folder, PRODUCT_SIZES["frame"], PRODUCT_SIZES["clip"])
    return folder


def devices_here(device: str) -> list[str]:
    if device != "auto":
        select_providers(device)
        return [device]
    return ["cpu", "cuda"] if CUDA in select_providers("auto") else ["cpu"]


def _header(kind: str, models_dir: Path, started: tuple[int, int], extra: dict[str, Any]) -> dict[str, Any]:
    files = sorted(p for p in models_dir.glob("*.onnx"))
    return {"kind": kind, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(),
            "cpu_steal_pct": steal_pct(started, cpu_times()), "models_dir": str(models_dir),
            "model_sha256": file_hashes(files), **extra}


def run_models(models_dir: Path, out_dir: Path, device: str, batches: Sequence[int], seconds: float,
               native: bool) -> Written:
    started = cpu_times()
    devices = devices_here(device)
    if is_stream_folder(models_dir):
        rows, cpu, notes = bench_models(models_dir, devices, batches, seconds, native)
        inc_rows, inc_ratio = clip_scoring_rows(cpu, seconds)
        rows += inc_rows
    else:  # imported detectors only
        rows, notes, inc_ratio = bench_face_models(face_model_files([models_dir]), devices, batches, seconds), [], None
    rat = ratios(rows)
    md = models_markdown(rows, rat, inc_ratio) + "".join(f"\n- {n}" for n in notes)
    data = _header("models", models_dir, started, {"batches": list(batches), "min_seconds": seconds, "devices": devices,
                                          "rows": [r.to_dict() for r in rows], "ratios": rat,
                                          "naive_over_incremental": inc_ratio, "notes": notes})
    write_json(out_dir / "models.json", data)
    (out_dir / "models.md").write_text(md, encoding="utf-8")
    return Written(md, [out_dir / "models.json", out_dir / "models.md"])


def run_pipeline(models_dir: Path, clip: Path, out_dir: Path, device: str, streams: Sequence[int],
                 modes: Sequence[str], duration_s: float | None, precision: str = "fp32", stride: int | None = None,
                 explain: bool = False, overlap: bool = True, frame_lane: bool = True) -> Written:
    started = cpu_times()
    rows = bench_pipeline(models_dir, clip, streams, modes, device, duration_s, precision, stride, explain, overlap,
                          frame_lane)
    md = pipeline_markdown(rows) + "\nCPU budget (CPU seconds per second of each run):\n\n" + cpu_budget_markdown(rows)
    extra = {"clip": str(clip), "duration_s": duration_s, "precision": precision, "stride": stride,
             "explain": explain, "overlap": overlap, "frame_lane": frame_lane,
             "rows": [r.to_dict(with_samples=True) for r in rows]}
    data = _header("pipeline", models_dir, started, extra)
    write_json(out_dir / "pipeline.json", data)
    (out_dir / "pipeline.md").write_text(md, encoding="utf-8")
    plots = pipeline_plots(rows, out_dir)
    return Written(md, [out_dir / "pipeline.json", out_dir / "pipeline.md", *plots])


def run_explain(models_dir: Path, clip: Path, out_dir: Path, device: str, seconds: float) -> Written:
    from dfstream.benchmarks.explain_bench import bench_explain, explain_markdown

    started = cpu_times()
    stats, sizes = bench_explain(models_dir, clip, device, seconds)
    md = explain_markdown(stats, sizes)
    extra = {"clip": str(clip), "seconds": seconds, "record_bytes": list(sizes),
             "steps": {k: asdict(v) for k, v in stats.items()}}
    write_json(out_dir / "explain.json", _header("explain", models_dir, started, extra))
    (out_dir / "explain.md").write_text(md, encoding="utf-8")
    return Written(md, [out_dir / "explain.json", out_dir / "explain.md"])


def run_ort(models_dir: Path, clip: Path, out_dir: Path, seconds: float, pipeline_s: float | None,
            variants: Sequence[str]) -> Written:
    from dfstream.benchmarks.ort_bench import bench_ort, ort_markdown

    started = cpu_times()
    rows = bench_ort(models_dir, clip, seconds, pipeline_s, variants)
    md = ort_markdown(rows)
    write_json(out_dir / "ort.json", _header("ort", models_dir, started, {"clip": str(clip), "rows": rows}))
    (out_dir / "ort.md").write_text(md, encoding="utf-8")
    return Written(md, [out_dir / "ort.json", out_dir / "ort.md"])


def run_soak(models_dir: Path, clip: Path, out_dir: Path, device: str, minutes: float,
             interval_s: float, precision: str = "fp32") -> Written:
    started = cpu_times()
    result = soak(models_dir, clip, minutes, device, interval_s, precision).to_dict()
    md = soak_markdown(result)
    extra = {"clip": str(clip), "minutes": minutes, "precision": precision, **result}
    write_json(out_dir / "soak.json", _header("soak", models_dir, started, extra))
    (out_dir / "soak.md").write_text(md, encoding="utf-8")
    return Written(md, [out_dir / "soak.json", out_dir / "soak.md"])


def run_cluster_bench(models_dir: Path, clip: Path, out_dir: Path, cameras: Sequence[int], duration_s: float,
                      precision: str) -> Written:
    from dfstream.benchmarks.cluster_bench import bench_cluster, cluster_markdown

    started = cpu_times()
    rows, hop = bench_cluster(models_dir, clip, cameras, duration_s, precision)
    md = cluster_markdown(rows, hop)
    extra = {"clip": str(clip), "duration_s": duration_s, "precision": precision,
             "rows": [asdict(r) for r in rows], "hop": hop}
    write_json(out_dir / "cluster.json", _header("cluster", models_dir, started, extra))
    (out_dir / "cluster.md").write_text(md, encoding="utf-8")
    return Written(md, [out_dir / "cluster.json", out_dir / "cluster.md"])
