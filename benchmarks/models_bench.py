"""``dfstream bench models``: each graph per provider, precision and batch, beside its native framework.

Native rows (Keras/TensorFlow for model A, torch eager for the encoder and head) run in the same
process on models of the same architecture and input size; latency does not depend on weight
values. They are skipped, with a note, where the ``train`` extra is not installed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.benchmarks.timing import Stats, measure
from dfstream.export.file_names import precision_path
from dfstream.stream.engine import STREAM_ROLES, model_files
from dfstream.stream.runtime import CUDA, OrtModel, load_model
from dfstream.stream.types import CLIP_LEN, EMBED_DIM, HEAD_FEATURES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRow:
    model: str
    runtime: str
    provider: str
    precision: str
    batch: int
    stats: Stats
    items_per_s: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(d.pop("stats"))
        return d


def _row(model: str, runtime: str, provider: str, precision: str, batch: int, stats: Stats) -> ModelRow:
    return ModelRow(model, runtime, provider, precision, batch, stats, batch * 1000.0 / stats.p50_ms)


def _inputs(m: OrtModel, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    shapes = [tuple(batch if i == 0 else int(d) for i, d in enumerate(s.shape)) for s in m.inputs]  # type: ignore[arg-type]
    return [rng.random(shape, dtype=np.float32) for shape in shapes]


def _runner(m: OrtModel, arrays: list[np.ndarray]) -> Callable[[], object]:
    return lambda: m.run(*arrays)


def bench_onnx(
    models_dir: Path, devices: Sequence[str], batches: Sequence[int], seconds: float
) -> tuple[list[ModelRow], dict[str, OrtModel]]:
    """ORT rows for every graph, device and (on CUDA) precision; returns the CPU fp32 sessions too."""
    files = model_files(models_dir)
    rng = np.random.default_rng(0)
    rows: list[ModelRow] = []
    cpu_models: dict[str, OrtModel] = {}
    for device in devices:
        for role in STREAM_ROLES:
            variants = [("fp32", files[role])]
            for precision in ("fp16",) if device == "cuda" else ("int8",):
                if precision_path(files[role], precision).is_file():
                    variants.append((precision, precision_path(files[role], precision)))
            for precision, path in variants:
                m = load_model(path, role, device)  # type: ignore[arg-type]
                if device == "cpu" and precision == "fp32":
                    cpu_models[role] = m
                provider = "cuda" if m.provider == CUDA else "cpu"
                for batch in batches:
                    stats = measure(_runner(m, _inputs(m, batch, rng)), seconds)
                    rows.append(_row(role, "onnxruntime", provider, precision, batch, stats))
                    log.info("%s %s %s b%d: p50 %.2f ms", role, provider, precision, batch, stats.p50_ms)
    return rows, cpu_models


def clip_scoring_rows(cpu: dict[str, OrtModel], seconds: float) -> tuple[list[ModelRow], float]:
    """Per-frame cost of model B: incremental (1 encoder + head) vs naive (16 encoder + head)."""
    rng = np.random.default_rng(1)
    enc, head = cpu["clip_encoder"], cpu["clip_head"]
    one = _inputs(enc, 1, rng)[0]
    sixteen = _inputs(enc, CLIP_LEN, rng)[0]
    feats = rng.random((1, CLIP_LEN, HEAD_FEATURES), dtype=np.float32)

    def incremental() -> None:
        emb = enc.run(one)
        feats[0, -1, :EMBED_DIM] = emb[0]
        head.run(feats)

    def naive() -> None:
        emb = enc.run(sixteen)
        feats[0, :, :EMBED_DIM] = emb
        head.run(feats)

    inc = measure(incremental, seconds)
    nai = measure(naive, seconds)
    rows = [_row("clip_incremental", "onnxruntime", "cpu", "fp32", 1, inc),
            _row("clip_naive", "onnxruntime", "cpu", "fp32", 1, nai)]
    return rows, nai.p50_ms / inc.p50_ms


def native_rows(cpu: dict[str, OrtModel], batches: Sequence[int], seconds: float) -> tuple[list[ModelRow], list[str]]:
    """Keras/TF for model A and torch eager for the encoder and head, same input sizes as the ONNX files."""
    rows: list[ModelRow] = []
    notes: list[str] = []
    runners: list[tuple[str, str, Callable[[int], Callable[[], object]]]] = []
    try:
        runners.append(("frame_cnn", "tensorflow", _keras_runner(cpu["frame_cnn"])))
    except ImportError as exc:
        notes.append(f"tensorflow rows skipped: {exc}")
    try:
        enc, head = _torch_runners(cpu["clip_encoder"])
        runners += [("clip_encoder", "torch", enc), ("clip_head", "torch", head)]
    except ImportError as exc:
        notes.append(f"torch rows skipped: {exc}")
    for role, runtime, make in runners:
        for batch in batches:
            stats = measure(make(batch), seconds)
            rows.append(_row(role, runtime, "cpu", "fp32", batch, stats))
            log.info("%s %s b%d: p50 %.2f ms", role, runtime, batch, stats.p50_ms)
    return rows, notes


def _keras_runner(model_a: OrtModel) -> Callable[[int], Callable[[], object]]:
    import keras
    import tensorflow as tf

    from dfstream.models import cnn_cbam

    size = model_a.metadata.input_size or 224
    keras.utils.set_random_seed(0)
    model = cnn_cbam.build_model(size)

    @tf.function(input_signature=(tf.TensorSpec((None, size, size, 3), tf.float32),))
    def serve(x: Any) -> Any:
        return model(x, training=False)

    def make(batch: int) -> Callable[[], object]:
        x = tf.constant(np.random.default_rng(0).random((batch, size, size, 3), dtype=np.float32) * 255)
        return lambda: serve(x).numpy()

    return make


def _torch_runners(encoder: OrtModel) -> tuple[Callable[[int], Callable[[], object]], ...]:
    import torch

    from dfstream.models.clip_lstm import ClipDetector

    size = encoder.metadata.input_size or 256
    torch.manual_seed(0)
    model = ClipDetector().eval()

    def make_encoder(batch: int) -> Callable[[], object]:
        x = torch.rand(batch, 3, size, size)

        def run() -> object:
            with torch.inference_mode():
                return model.encode(x).numpy()

        return run

    def make_head(batch: int) -> Callable[[], object]:
        x = torch.rand(batch, CLIP_LEN, HEAD_FEATURES)

        def run() -> object:
            with torch.inference_mode():
                return model.head(x).numpy()

        return run

    return make_encoder, make_head


def ratios(rows: Sequence[ModelRow]) -> dict[str, float]:
    """ORT p50 over native p50 per model and batch (CPU, fp32): below 1 means ORT is faster."""
    ort_p50 = {(r.model, r.batch): r.stats.p50_ms for r in rows
               if r.runtime == "onnxruntime" and r.provider == "cpu" and r.precision == "fp32"}
    out: dict[str, float] = {}
    for r in rows:
        if r.runtime in ("tensorflow", "torch") and (r.model, r.batch) in ort_p50:
            out[f"{r.model}_b{r.batch}_ort_over_{r.runtime}"] = ort_p50[(r.model, r.batch)] / r.stats.p50_ms
    return out
