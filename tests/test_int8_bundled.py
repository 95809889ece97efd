"""int8 acceptance on the bundled models: the graph that `--precision auto` runs on CPU agrees with fp32.

The check crops are the sample clip's faces (genuine and self-blended) and the same faces degraded
the ways cameras and codecs degrade them, so the answers spread beyond the clip's own narrow range."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dfstream.export.quantize import INT8_PROB_TOL
from dfstream.stream.contract.paths import BUNDLED_MODELS, SAMPLE_CLIP
from dfstream.stream.crops import InputSpec, to_model_input
from dfstream.stream.faces import face_crops
from dfstream.stream.ort_sessions import load_model


def _degraded(crop: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    small = cv2.resize(crop, (48, 48), interpolation=cv2.INTER_AREA)
    _, jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 15])
    noisy = np.clip(crop + rng.normal(0, 12, crop.shape), 0, 255).astype(np.uint8)
    return [
        crop,
        cv2.GaussianBlur(crop, (0, 0), 3),
        cv2.resize(small, crop.shape[1::-1], interpolation=cv2.INTER_LINEAR),
        cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
        noisy,
        np.clip(crop.astype(np.float32) * 1.4 + 20, 0, 255).astype(np.uint8),
        np.clip(crop.astype(np.float32) * 0.6, 0, 255).astype(np.uint8),
        cv2.flip(crop, 1),
        np.ascontiguousarray(crop[..., ::-1]),  # colours swapped: a far-off input, still a face
    ]


def test_bundled_int8_model_a_agrees_with_fp32() -> None:
    int8_path = BUNDLED_MODELS / "frame_cnn.int8.onnx"
    if not int8_path.is_file():
        pytest.fail("the bundled models have no int8 model A; --precision auto would run fp32")
    fp32 = load_model(BUNDLED_MODELS / "frame_cnn.onnx", "frame_cnn", "cpu")
    int8 = load_model(int8_path, "frame_cnn", "cpu")
    spec = InputSpec.of(fp32.metadata)
    rng = np.random.default_rng(0)
    crops = [cv2.resize(c, (spec.size, spec.size), interpolation=cv2.INTER_AREA) for c in face_crops(SAMPLE_CLIP, 24)]
    batch = to_model_input([d for c in crops for d in _degraded(c, rng)], spec)
    p32 = np.concatenate([fp32.p_fake(batch[i:i + 16]) for i in range(0, len(batch), 16)])
    p8 = np.concatenate([int8.p_fake(batch[i:i + 16]) for i in range(0, len(batch), 16)])
    assert np.ptp(p32) > 0.3, "the check crops must spread the answers"
    diff = np.abs(p8 - p32)
    assert diff.max() <= INT8_PROB_TOL, f"int8 moves P(fake) by {diff.max():.3f} on crop {int(diff.argmax())}"


def test_bundled_int8_graph_is_model_a_of_the_same_checkpoint() -> None:
    fp32 = load_model(BUNDLED_MODELS / "frame_cnn.onnx", "frame_cnn", "cpu").metadata
    int8 = load_model(BUNDLED_MODELS / "frame_cnn.int8.onnx", "frame_cnn", "cpu").metadata
    assert int8.precision == "int8" and int8.source_sha256 == fp32.source_sha256
    assert (int8.threshold, int8.calibration) == (fp32.threshold, fp32.calibration)
