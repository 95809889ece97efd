"""``dfstream bench cluster``: N cameras in one process against N camera workers on Ray.

Both engines stream the same copies of a face clip paced like cameras; throughput is counted over
each camera's own scoring span (Ray workers start at different times), capture→score from the
records. The Ray hop is also measured alone: one tick's crops (one face) sent to the scorer and
back, against the same call in process, and a batch of 16 faces both ways.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.benchmarks.pipeline_bench import clip_copies
from dfstream.benchmarks.timing import Stats
from dfstream.stream.run_config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterRow:
    engine: str
    cameras: int
    frames: int
    fps_total: float
    fps_min_camera: float
    p50_ms: float
    p99_ms: float
    dropped: int


def _row(engine: str, cameras: int, out: Path, dropped: int) -> ClusterRow:
    frames: dict[str, dict[int, float]] = {}
    totals: list[float] = []
    for line in out.read_text().splitlines():
        r = json.loads(line)
        if r["type"] == "score":
            frames.setdefault(r["source"], {})[r["frame_id"]] = r["ts"]
            totals.append(r["latency_ms"]["total"])
    rates = []
    for stamps in frames.values():
        ts = sorted(stamps.values())
        rates.append((len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0)
    rates += [0.0] * (cameras - len(rates))
    s = Stats.of(totals)
    return ClusterRow(engine, cameras, sum(len(v) for v in frames.values()), round(sum(rates), 2),
                      round(min(rates), 2), round(s.p50_ms, 1), round(s.p99_ms, 1), dropped)


def bench_cluster(models_dir: Path, clip: Path, cameras: Sequence[int], duration_s: float,
                  precision: str = "auto") -> tuple[list[ClusterRow], dict[str, Any]]:
    from dfstream.stream.cluster.placement import ClusterOptions, connect
    from dfstream.stream.cluster.ray_run import run_cluster
    from dfstream.stream.local_run import run_stream

    rows: list[ClusterRow] = []
    with tempfile.TemporaryDirectory(prefix="dfstream-bench-") as tmp:
        copies = clip_copies(Path(tmp), clip, max(cameras), "cam")
        connect(ClusterOptions(), max(cameras))
        hop = bench_hop(models_dir, precision)
        for n in cameras:
            for engine in ("local", "ray"):
                out = Path(tmp) / f"{engine}-{n}.jsonl"
                fields: dict[str, Any] = {"precision": precision, "engine": engine}
                cfg = RunConfig(sources=tuple(map(str, copies[:n])), models_dir=models_dir, out=str(out),
                                window=False, realtime=True, loop=True, duration_s=duration_s, **fields)
                summary, errors = (run_cluster if engine == "ray" else run_stream)(cfg)
                if errors:
                    log.warning("cluster bench %s × %d: %s", engine, n, "; ".join(errors))
                dropped = sum(s.dropped for s in summary.sources.values())
                row = _row(engine, n, out, dropped)
                log.info("%s × %d: %.1f fps, p99 %.0f ms", engine, n, row.fps_total, row.p99_ms)
                rows.append(row)
    return rows, hop


def bench_hop(models_dir: Path, precision: str, repeats: int = 60) -> dict[str, Any]:
    """Per-call cost of the scorer in process and through Ray (same node), for 1 and 16 faces."""
    import ray

    from dfstream.stream.cluster import NAMESPACE
    from dfstream.stream.cluster.scorer import BatchingScorer
    from dfstream.stream.model_set import ModelSet

    models = ModelSet.load(models_dir, "cpu", precision)
    remote: Any = ray.remote(BatchingScorer).options(namespace=NAMESPACE, max_concurrency=1000).remote(
        str(models_dir), "cpu", precision)
    ray.get(remote.stats.remote())
    rng = np.random.default_rng(0)
    a, b = models.frame_input.size, models.clip_input.size
    result: dict[str, Any] = {}
    for faces in (1, 16):
        fa = rng.integers(0, 256, (faces, a, a, 3), dtype=np.uint8)
        fb = rng.integers(0, 256, (faces, b, b, 3), dtype=np.uint8)
        crops_a, crops_b = list(fa), list(fb)

        def in_process(a: list[np.ndarray] = crops_a, b: list[np.ndarray] = crops_b) -> Any:
            return models.score_crops(a, b)

        def through_ray(a: np.ndarray = fa, b: np.ndarray = fb) -> Any:
            return ray.get(remote.score.remote(a, b, False))

        local, over_ray = _time(in_process, repeats), _time(through_ray, repeats)
        result[f"{faces}_face"] = {"in_process_ms": asdict(local), "ray_ms": asdict(over_ray),
                                   "hop_ms": round(over_ray.p50_ms - local.p50_ms, 2),
                                   "ratio": round(over_ray.p50_ms / local.p50_ms, 3),
                                   "crop_bytes": int(fa.nbytes + fb.nbytes)}
    ray.kill(remote)
    return result


def _time(call: Callable[[], Any], repeats: int) -> Stats:
    for _ in range(3):
        call()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        samples.append((time.perf_counter() - t) * 1000.0)
    return Stats.of(samples)


def cluster_markdown(rows: Sequence[ClusterRow], hop: dict[str, Any]) -> str:
    lines = ["| cameras | engine | fps (all cameras) | slowest camera fps | capture→score p50 / p99 ms | dropped "
             "| Ray / in-process fps |", "|---|---|---|---|---|---|---|"]
    local = {r.cameras: r for r in rows if r.engine == "local"}
    for r in rows:
        ratio = f"{r.fps_total / local[r.cameras].fps_total:.2f}" if r.engine == "ray" and local.get(
            r.cameras) and local[r.cameras].fps_total else ""
        lines.append(f"| {r.cameras} | {r.engine} | {r.fps_total:.1f} | {r.fps_min_camera:.1f} | "
                     f"{r.p50_ms:.0f} / {r.p99_ms:.0f} | {r.dropped} | {ratio} |")
    lines += ["", "| scorer call | in process p50 ms | through Ray p50 ms | hop ms | ratio | crops sent |",
              "|---|---|---|---|---|---|"]
    for name, h in hop.items():
        lines.append(f"| {name.replace('_', ' ')} | {h['in_process_ms']['p50_ms']:.2f} | {h['ray_ms']['p50_ms']:.2f} | "
                     f"{h['hop_ms']:.2f} | {h['ratio']:.2f} | {h['crop_bytes'] / 1024:.0f} KiB |")
    return "\n".join(lines) + "\n"
