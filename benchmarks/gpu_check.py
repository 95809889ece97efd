"""``dfstream bench gpu-check``: the first thing to run on a machine with a GPU, in a few minutes.

Each graph the stream runs (and each imported detector beside it) is opened on CUDA, and on
TensorRT when its libraries load; the check asserts the provider and that CUDA graphs are on where
they should be, compares with the CPU on random batches of 1, 1, 3, 17, 64 and 70 rows (a repeat, a
padded bucket, a chunked batch; ≤ 1e-3 fp32, ≤ 2e-2 fp16), reruns each from a second thread (graphs
are captured per thread), and times batches 1/4/16/64. On a machine without a usable GPU it refuses
in one line (exit 2), which is what CI checks.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dfstream.benchmarks.timing import measure_interleaved
from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.face_models import face_model_files, is_stream_folder
from dfstream.stream.gpu_options import CUDA, PROVIDER_LABEL, TENSORRT
from dfstream.stream.model_set import model_files
from dfstream.stream.ort_sessions import OrtModel, load_model, select_providers

log = logging.getLogger(__name__)

ROWS = (1, 1, 3, 17, 64, 70)
TIMED = (1, 4, 16, 64)
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}


class GpuCheckFailed(DfstreamError):
    """A graph ran on the GPU but not as it must: wrong provider, no graphs, or answers off the CPU's."""


@dataclass
class GraphCheck:
    file: str
    role: str
    precision: str
    provider: str
    cuda_graphs: bool
    max_diff_vs_cpu: float
    second_thread_equal: bool
    p50_ms: dict[int, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _targets(models_dir: Path) -> list[tuple[str, Path, Path]]:
    """(role, graph, its fp32 twin for the CPU reference) for every variant to check."""
    out: list[tuple[str, Path, Path]] = []
    if is_stream_folder(models_dir):
        for role, path in model_files(models_dir).items():
            out += [(role, v, path) for v in (path, precision_path(path, "fp16")) if v.is_file()]
    else:
        for path in face_model_files([models_dir]):
            out += [("face_model", v, path) for v in (path, precision_path(path, "fp16")) if v.is_file()]
    return out


def _batch(model: OrtModel, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])  # type: ignore[arg-type]
    return rng.uniform(0, 1, (n, *shape)).astype(np.float32)


def _runner(model: OrtModel, batch: np.ndarray) -> Callable[[], object]:
    return lambda: model.run(batch)


def check_graph(role: str, path: Path, fp32: Path, seconds: float) -> GraphCheck:
    gpu = load_model(path, role, "cuda")  # type: ignore[arg-type]  # ProviderError when it lands elsewhere
    cpu = load_model(fp32, role, "cpu")  # type: ignore[arg-type]
    precision = gpu.metadata.precision
    graphs = gpu.bound is not None and gpu.bound.cuda_graphs
    rng = np.random.default_rng(0)
    batches = [_batch(gpu, n, rng) for n in ROWS]
    diff = max(float(np.abs(gpu.run(b) - cpu.run(b)).max()) for b in batches)
    first = gpu.run(batches[2])
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.append(gpu.run(batches[2])))
    thread.start()
    thread.join()
    check = GraphCheck(path.name, role, precision, PROVIDER_LABEL.get(gpu.provider, gpu.provider), graphs, diff,
                       bool(other) and np.array_equal(first, other[0]))
    if gpu.provider not in (CUDA, TENSORRT):
        check.problems.append(f"runs on {gpu.provider}")
    if gpu.provider == CUDA and len(gpu.inputs) == 1 and not graphs:
        check.problems.append("CUDA graphs are off")
    if diff > TOLERANCE.get(precision, 1e-3):
        check.problems.append(f"differs from the CPU by {diff:.2e} (tolerance {TOLERANCE.get(precision, 1e-3)})")
    if not check.second_thread_equal:
        check.problems.append("a run from a second thread gave other answers")
    stats = measure_interleaved({str(n): _runner(gpu, _batch(gpu, n, rng)) for n in TIMED}, seconds * len(TIMED))
    check.p50_ms = {n: s.p50_ms for n, s in zip(TIMED, stats.values(), strict=True)}
    return check


def gpu_check(models_dir: Path, out_dir: Path, seconds: float = 1.0) -> list[GraphCheck]:
    """Every graph checked; the report written; GpuCheckFailed names the first problem."""
    select_providers("cuda")  # one line when this onnxruntime has no CUDA at all
    checks = [check_graph(role, path, fp32, seconds) for role, path, fp32 in _targets(models_dir)]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps([asdict(c) for c in checks], indent=2) + "\n")
    (out_dir / "gpu_check.md").write_text(markdown(checks), encoding="utf-8")
    failed = [c for c in checks if c.problems]
    if failed:
        raise GpuCheckFailed(f"{failed[0].file}: {'; '.join(failed[0].problems)} (report in {out_dir})")
    return checks


def markdown(checks: Sequence[GraphCheck]) -> str:
    lines = ["| graph | precision | provider | CUDA graphs | max diff vs CPU | 2nd thread | "
             + " | ".join(f"b{n} p50 ms" for n in TIMED) + " |",
             "| --- | --- | --- | --- | ---: | --- |" + " ---: |" * len(TIMED)]
    for c in checks:
        times = " | ".join(f"{c.p50_ms.get(n, float('nan')):.3f}" for n in TIMED)
        lines.append(f"| {c.file} | {c.precision} | {c.provider} | {'on' if c.cuda_graphs else 'off'} | "
                     f"{c.max_diff_vs_cpu:.2e} | {'same' if c.second_thread_equal else 'DIFFERENT'} | {times} |")
    return "\n".join(lines) + "\n"

