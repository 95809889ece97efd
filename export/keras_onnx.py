"""Model A (.keras) → one ONNX graph with a dynamic batch axis, checked against Keras."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dfstream.export.attention import ATTENTION_OUTPUT, add_attention_output, keras_attention
from dfstream.export.onnx_files import (
    OPSET,
    ExportedFile,
    base_metadata_versions,
    to_fp16,
    write_with_metadata,
)
from dfstream.export.verify import FP16_TOL, FP32_TOL, check_informative, check_parity, run_onnx
from dfstream.models.input_scale import OPTION_HINT, InputScaleChoice, resolve_input_scale
from dfstream.stream.contract.file_names import fp16_path, sha256_of
from dfstream.stream.contract.metadata import INPUT_MAX, ModelMetadata, PositiveClass

log = logging.getLogger(__name__)

INPUT_NAME = "image"


def probe_images(size: int, scale: float, seed: int = 0) -> np.ndarray:
    """Probe inputs at the model's scale: noise, smooth gradients and a flat grey image."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, (2, size, size, 3))
    ys, xs = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    ramp = np.stack([xs, ys, 1 - xs], axis=-1)[None]
    grey = np.full((1, size, size, 3), 0.5)
    out: np.ndarray = (np.concatenate([noise, ramp, grey]) * scale).astype(np.float32)
    return out


def export_frame_model(
    keras_path: Path,
    out_path: Path,
    threshold: float,
    positive: PositiveClass | None = None,
    fp16: bool = False,
    calibration: tuple[float, float] = (1.0, 0.0),
    input_scale: InputScaleChoice = "auto",
) -> list[ExportedFile]:
    """Convert, attach metadata, and prove parity (fp32 ≤1e-4) before returning the written files.

    ``input_scale`` auto: the scale at which the model's answers on face crops vary (logged and
    written into the metadata, so the runtime feeds that scale)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    from dfstream.models import cnn_cbam

    model = cnn_cbam.load_model(keras_path)
    size = cnn_cbam.input_size(model)
    positive = positive or cnn_cbam.positive_class(model)  # type: ignore[assignment]

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model(x, training=False))

    scale = resolve_input_scale(input_scale, size, predict, keras_path.name, cnn_cbam.known_input_scale(model))
    probes = probe_images(size, INPUT_MAX[scale])
    reference = np.asarray(model(probes, training=False), dtype=np.float32)  # also builds a fresh model
    check_informative("frame_cnn", reference, hint=f"is the model trained, and at input scale {scale}? "
                      f"If not, {OPTION_HINT}")

    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=spec)
    def serve(image: tf.Tensor) -> tf.Tensor:
        return model(image, training=False)

    onnx_model, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    attention = keras_attention(model, probes)
    if attention is None or not add_attention_output(onnx_model):
        log.warning("%s: no CBAM spatial-attention map found; --explain will have nothing to draw", keras_path.name)
        attention = None
    meta = ModelMetadata(
        role="frame_cnn",
        input_layout="NHWC",
        input_size=size,
        color_order=cnn_cbam.COLOR_ORDER,  # type: ignore[arg-type]
        input_scale=scale,
        threshold=threshold,
        calibration=calibration,
        positive_class=positive,  # type: ignore[arg-type]
        source_sha256=sha256_of(keras_path),
        exporter=f"tf2onnx {tf2onnx.__version__}",
        framework=f"tensorflow {tf.__version__}, keras {keras.__version__}",
        opset=OPSET,
        attention_output=None if attention is None else ATTENTION_OUTPUT,
        **base_metadata_versions(),  # type: ignore[arg-type]
    )
    written: list[ExportedFile] = []
    write_with_metadata(onnx_model, meta, out_path)
    diff = check_parity(out_path.name, reference, run_onnx(out_path, {INPUT_NAME: probes}), FP32_TOL)
    if attention is not None:
        got = run_onnx(out_path, {INPUT_NAME: probes}, ATTENTION_OUTPUT)
        check_parity(f"{out_path.name} attention", attention, got, FP32_TOL)
    written.append(ExportedFile(out_path, "frame_cnn", "fp32", diff))
    if fp16:
        half = fp16_path(out_path)
        write_with_metadata(to_fp16(onnx_model), meta.with_precision("fp16"), half)
        diff = check_parity(half.name, reference, run_onnx(half, {INPUT_NAME: probes}), FP16_TOL)
        if attention is not None:
            got = run_onnx(half, {INPUT_NAME: probes}, ATTENTION_OUTPUT)
            check_parity(f"{half.name} attention", attention, got, FP16_TOL)
        written.append(ExportedFile(half, "frame_cnn", "fp16", diff))
    return written
