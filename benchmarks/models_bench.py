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

from dfstream.benchmarks.timing import Stats, measure_interleaved
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM, HEAD_FEATURES
from dfstream.stream.contract.variants import STREAM_ROLES
from dfstream.stream.gpu_options import PROVIDER_LABEL
from dfstream.stream.model_set import model_files
from dfstream.stream.ort_sessions import OrtModel, load_model

log = logging.getLogger(__name__)
Maker = Callable[[int], Callable[[], object]]
"""Batch size → a callable that runs one batch."""


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


def load_variants(models_dir: Path, devices: Sequence[str]) -> list[tuple[str, str, str, OrtModel]]:
    """(role, provider, precision, session) for every graph variant to time: fp32 everywhere,
    int8 on CPU and fp16 on CUDA where those files exist."""
    files = model_files(models_dir)
    out: list[tuple[str, str, str, OrtModel]] = []
    for device in devices:
        for role in STREAM_ROLES:
            variants = [("fp32", files[role])]
            for precision in ("fp16",) if device == "cuda" else ("int8",):
                if precision_path(files[role], precision).is_file():
                    variants.append((precision, precision_path(files[role], precision)))
            for precision, path in variants:
                m = load_model(path, role, device)  # type: ignore[arg-type]
                out.append((role, PROVIDER_LABEL.get(m.provider, m.provider), precision, m))
    return out


def bench_models(
    models_dir: Path, devices: Sequence[str], batches: Sequence[int], seconds: float, native: bool
) -> tuple[list[ModelRow], dict[str, OrtModel], list[str]]:
    """Per role and batch, every ORT variant and the native framework are timed interleaved
    (``measure_interleaved``), so their ratio is not skewed by the machine's speed drifting."""
    variants = load_variants(models_dir, devices)
    cpu = {role: m for role, prov, prec, m in variants if prov == "cpu" and prec == "fp32"}
    if len(cpu) < len(STREAM_ROLES):  # --device cuda: the CPU baselines the native rows and clip rows need
        files = model_files(models_dir)
        cpu = {role: load_model(files[role], role, "cpu") for role in STREAM_ROLES}  # type: ignore[arg-type]
    makers, notes = _native_makers(cpu, "cuda" in devices) if native else ({}, [])
    rng = np.random.default_rng(0)
    rows: list[ModelRow] = []
    for role in STREAM_ROLES:
        for batch in batches:
            fns: dict[tuple[str, str, str], Callable[[], object]] = {
                ("onnxruntime", prov, prec): _runner(m, _inputs(m, batch, rng))
                for r, prov, prec, m in variants if r == role
            }
            for runtime, prov, make in makers.get(role, []):
                fns[(runtime, prov, "fp32")] = make(batch)
            stats = measure_interleaved({"/".join(k): f for k, f in fns.items()}, seconds * len(fns))
            for (runtime, prov, prec), st in zip(fns, stats.values(), strict=True):
                rows.append(_row(role, runtime, prov, prec, batch, st))
                log.info("%s %s %s %s b%d: p50 %.2f ms", role, runtime, prov, prec, batch, st.p50_ms)
    return rows, cpu, notes


def bench_face_models(files: Sequence[Path], devices: Sequence[str], batches: Sequence[int],
                      seconds: float) -> list[ModelRow]:
    """Imported detectors (``dfstream import``): each graph and its fp16 (CUDA) or int8 (CPU) variant
    where one exists, per provider and batch, timed interleaved like the bundled graphs."""
    rng = np.random.default_rng(0)
    rows: list[ModelRow] = []
    for path in files:
        for device in devices:
            variants = [("fp32", path)] + [(p, precision_path(path, p)) for p in (("fp16",) if device == "cuda"
                                                                                  else ("int8",))
                                           if precision_path(path, p).is_file()]
            loaded = [(prec, load_model(f, "face_model", device)) for prec, f in variants]
            name = loaded[0][1].metadata.name or path.stem
            for batch in batches:
                fns = {(PROVIDER_LABEL.get(m.provider, m.provider), prec): _runner(m, _inputs(m, batch, rng))
                       for prec, m in loaded}
                stats = measure_interleaved({"/".join(k): f for k, f in fns.items()}, seconds * len(fns))
                for (prov, prec), st in zip(fns, stats.values(), strict=True):
                    rows.append(_row(name, "onnxruntime", prov, prec, batch, st))
                    log.info("%s %s %s b%d: p50 %.2f ms", name, prov, prec, batch, st.p50_ms)
    return rows


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

    both = measure_interleaved({"incremental": incremental, "naive": naive}, 2 * seconds)
    inc, nai = both["incremental"], both["naive"]
    rows = [_row("clip_incremental", "onnxruntime", "cpu", "fp32", 1, inc),
            _row("clip_naive", "onnxruntime", "cpu", "fp32", 1, nai)]
    return rows, nai.p50_ms / inc.p50_ms


def _native_makers(cpu: dict[str, OrtModel], cuda: bool) -> tuple[dict[str, list[tuple[str, str, Maker]]], list[str]]:
    """Keras/TF for model A and torch eager for the encoder and head, same input sizes as the ONNX files;
    with ``cuda``, torch on the GPU as well, timed in the same rounds as ONNX Runtime's CUDA rows."""
    makers: dict[str, list[tuple[str, str, Maker]]] = {}
    notes: list[str] = []
    try:
        makers["frame_cnn"] = [("tensorflow", "cpu", _keras_runner(cpu["frame_cnn"]))]
    except ImportError as exc:
        notes.append(f"tensorflow rows skipped: {exc}")
    try:
        import torch

        gpus = ["cuda"] if cuda and torch.cuda.is_available() else []
        if cuda and not gpus:
            notes.append("torch CUDA rows skipped: torch sees no GPU")
        if gpus:  # fp32 rows are fp32 on both sides: TF32 would make torch's look faster than they are
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            notes.append("CUDA fp32 rows are fp32 on both sides: TF32 off in torch and in ONNX Runtime's CUDA "
                         "provider (use_tf32=0)")
        for device in ["cpu", *gpus]:
            enc, head = _torch_runners(cpu["clip_encoder"], device)
            makers.setdefault("clip_encoder", []).append(("torch", device, enc))
            makers.setdefault("clip_head", []).append(("torch", device, head))
    except ImportError as exc:
        notes.append(f"torch rows skipped: {exc}")
    return makers, notes


def _keras_runner(model_a: OrtModel) -> Maker:
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


def _torch_runners(encoder: OrtModel, device: str = "cpu") -> tuple[Maker, Maker]:
    """Fed as the ONNX Runtime rows are: each run takes a host array, copies it to the device and
    returns host memory (on CUDA that waits for the GPU), so neither side has its input in place."""
    import torch

    from dfstream.models.clip_lstm import ClipDetector

    size = encoder.metadata.input_size or 256
    torch.manual_seed(0)
    model = ClipDetector().eval().to(device)

    rng = np.random.default_rng(0)

    def make_encoder(batch: int) -> Callable[[], object]:
        host = rng.random((batch, 3, size, size), dtype=np.float32)

        def run() -> object:
            with torch.inference_mode():
                return model.encode(torch.from_numpy(host).to(device)).cpu().numpy()

        return run

    def make_head(batch: int) -> Callable[[], object]:
        host = rng.random((batch, CLIP_LEN, HEAD_FEATURES), dtype=np.float32)

        def run() -> object:
            with torch.inference_mode():
                return model.head(torch.from_numpy(host).to(device)).cpu().numpy()

        return run

    return make_encoder, make_head


def ratios(rows: Sequence[ModelRow]) -> dict[str, float]:
    """ORT p50 (each precision) over the native fp32 p50 on the same provider, per model and batch: below 1
    means ORT is faster. CUDA ratios are named with ``_cuda``."""
    native = {(r.model, r.batch, r.provider): r for r in rows if r.runtime in ("tensorflow", "torch")}
    out: dict[str, float] = {}
    for r in rows:
        n = native.get((r.model, r.batch, r.provider))
        if r.runtime == "onnxruntime" and n is not None:
            on = "" if r.provider == "cpu" else f"_{r.provider}"
            out[f"{r.model}_b{r.batch}_ort_{r.precision}_over_{n.runtime}{on}"] = r.stats.p50_ms / n.stats.p50_ms
    return out
