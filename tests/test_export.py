"""Export round trips at tiny sizes: parity printed, metadata read back, bad graphs refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import onnx
import pytest
import torch

from dfstream.export.keras_onnx import export_frame_model
from dfstream.export.torch_onnx import export_clip_model
from dfstream.models import cnn_cbam
from dfstream.models.clip_lstm import ClipDetector, randomize_batchnorm
from dfstream.models.input_scale import probe_faces
from dfstream.stream.contract.exceptions import ExportCheckError, InputPathError, MetadataError, ModelLoadError
from dfstream.stream.contract.metadata import INPUT_MAX
from dfstream.stream.crops import InputSpec, to_model_input
from dfstream.stream.ort_sessions import load_model, read_metadata

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def frame_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("frame")
    keras.utils.set_random_seed(0)  # some random inits saturate the sigmoid on every probe; export refuses those
    cnn_cbam.build_model(32).save(d / "m.keras")
    export_frame_model(d / "m.keras", d / "frame_cnn.onnx", threshold=0.37, fp16=True)
    return d / "m.keras", d / "frame_cnn.onnx"


@pytest.fixture(scope="module")
def clip_onnx(tmp_path_factory: pytest.TempPathFactory) -> tuple[ClipDetector, Path]:
    d = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    model = ClipDetector()
    randomize_batchnorm(model, seed=1)
    torch.save(model.state_dict(), d / "mediapipe_model.pth")
    export_clip_model(d / "mediapipe_model.pth", d, threshold=0.6, input_size=64)
    return model.eval(), d


def test_frame_export_parity_and_metadata(frame_onnx: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    keras_path, onnx_path = frame_onnx
    model = load_model(onnx_path, "frame_cnn", "cpu")
    meta = model.metadata
    assert (meta.input_size, meta.color_order, meta.input_scale, meta.input_layout) == (32, "RGB", "0-255", "NHWC")
    assert meta.threshold == pytest.approx(0.37) and meta.positive_class == "fake" and meta.opset == 17
    assert len(meta.source_sha256) == 64 and meta.exporter.startswith("tf2onnx")
    assert model.provider == "CPUExecutionProvider"
    x = np.random.default_rng(5).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)  # batch 5: dynamic axis
    reference = cnn_cbam.load_model(keras_path).predict(x, verbose=0).reshape(-1)
    np.testing.assert_allclose(model.p_fake(x), reference, atol=1e-4)
    half = load_model(onnx_path.with_name("frame_cnn.fp16.onnx"), "frame_cnn", "cpu")
    assert half.metadata.precision == "fp16"
    np.testing.assert_allclose(half.p_fake(x), reference, atol=2e-2)


def test_clip_export_split_equals_full_at_other_batch(clip_onnx: tuple[ClipDetector, Path]) -> None:
    model, d = clip_onnx
    enc = load_model(d / "clip_encoder.onnx", "clip_encoder")
    head = load_model(d / "clip_head.onnx", "clip_head")
    full = load_model(d / "clip_full.onnx", "clip_full")
    assert (
        head.metadata.lmk_spec == "lmk5-v1" and enc.metadata.color_order == "BGR" and enc.metadata.input_scale == "0-1"
    )
    rng = np.random.default_rng(3)
    frames = rng.uniform(0, 1, (3, 16, 3, 64, 64)).astype(np.float32)  # batch 3, exported at 2
    lmks = rng.uniform(0, 1, (3, 16, 5)).astype(np.float32)
    emb = enc.run(frames.reshape(48, 3, 64, 64))
    assert emb.shape == (48, 1280) and float(emb.std()) > 1e-3
    split = head.run(np.concatenate([emb.reshape(3, 16, 1280), lmks], axis=2))
    with torch.no_grad():
        reference = model(torch.from_numpy(frames), torch.from_numpy(lmks)).numpy()
    np.testing.assert_allclose(split, reference, atol=1e-4)
    np.testing.assert_allclose(full.run(frames, lmks), reference, atol=1e-4)


def test_export_prints_parity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(2)
    model = ClipDetector()
    randomize_batchnorm(model, seed=2)
    torch.save(model.state_dict(), tmp_path / "b.pth")
    export_clip_model(tmp_path / "b.pth", tmp_path, threshold=0.5, input_size=48)
    out = capsys.readouterr().out
    for name in ("clip_encoder.onnx", "clip_head.onnx", "clip_full.onnx", "head(encoder(frames)) vs clip_full"):
        assert f"{name}: max abs diff" in out


def test_untrained_encoder_is_refused_not_passed_vacuously(tmp_path: Path) -> None:
    torch.save(ClipDetector().state_dict(), tmp_path / "fresh.pth")  # BN stats untouched: ~1e-13 outputs
    with pytest.raises(ExportCheckError, match="clip_encoder: framework outputs are degenerate"):
        export_clip_model(tmp_path / "fresh.pth", tmp_path, threshold=0.5, input_size=48)


def test_runtime_refuses_graph_without_metadata(tmp_path: Path, frame_onnx: tuple[Path, Path]) -> None:
    model = onnx.load(str(frame_onnx[1]))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(MetadataError, match=r"bare\.onnx: no dfstream metadata"):
        load_model(tmp_path / "bare.onnx", "frame_cnn")


def test_runtime_refuses_wrong_role_and_wrong_shape(tmp_path: Path, frame_onnx: tuple[Path, Path]) -> None:
    with pytest.raises(MetadataError, match=r"'dfstream\.role' is 'frame_cnn', expected 'clip_encoder'"):
        load_model(frame_onnx[1], "clip_encoder")
    model = onnx.load(str(frame_onnx[1]))
    for prop in model.metadata_props:
        if prop.key == "dfstream.input_size":
            prop.value = "224"
    onnx.save(model, str(tmp_path / "lying.onnx"))
    with pytest.raises(MetadataError, match=r"input 'image' has shape .*32, 32, 3.* implies \('N', 224, 224, 3\)"):
        load_model(tmp_path / "lying.onnx", "frame_cnn")


def test_runtime_refuses_corrupt_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07garbage" * 10)
    with pytest.raises(ModelLoadError, match=r"corrupt\.onnx: not a loadable ONNX model"):
        read_metadata(tmp_path / "corrupt.onnx")
    with pytest.raises(InputPathError, match="model file not found"):
        load_model(tmp_path / "none.onnx", "frame_cnn")


def test_saturated_frame_model_is_refused(tmp_path: Path) -> None:
    keras.utils.set_random_seed(4)  # this init outputs 0.0 for every probe image
    cnn_cbam.build_model(32).save(tmp_path / "sat.keras")
    with pytest.raises(ExportCheckError, match="frame_cnn: framework outputs are degenerate"):
        export_frame_model(tmp_path / "sat.keras", tmp_path / "frame_cnn.onnx", threshold=0.5)


@pytest.fixture(scope="module")
def notebook_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Model A files saved the notebook's way, trained on 0..255 and on 0..1 pixels (saved in parallel)."""
    root = tmp_path_factory.mktemp("notebook_a")
    runs = {}
    for scale, top in (("0-255", "255"), ("0-1", "1")):
        (root / scale).mkdir()
        cmd = [sys.executable, str(FIXTURES / "notebook_a_save.py"), str(root / scale), "32", top]
        runs[scale] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for proc in runs.values():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    return {scale: root / scale / "best_model.keras" for scale in runs}


@pytest.mark.parametrize("scale", ["0-255", "0-1"])
def test_notebook_model_exports_at_the_scale_it_was_trained_on(
    notebook_models: dict[str, Path], tmp_path: Path, scale: str
) -> None:
    files = export_frame_model(notebook_models[scale], tmp_path / "frame_cnn.onnx", threshold=0.5)  # auto
    assert files[0].max_abs_diff <= 1e-4
    model = load_model(tmp_path / "frame_cnn.onnx", "frame_cnn", "cpu")
    assert model.metadata.input_scale == scale and model.metadata.positive_class == "real"
    # the runtime feeds crops at the metadata's scale: its answers equal Keras' at the trained scale
    crops = [cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA) for c in probe_faces()[:6]]
    batch = to_model_input(crops, InputSpec.of(model.metadata))
    assert float(batch.max()) <= INPUT_MAX[scale] and float(batch.max()) > 0.5 * INPUT_MAX[scale]
    keras_p = cnn_cbam.load_model(notebook_models[scale]).predict(batch, verbose=0).reshape(-1)
    np.testing.assert_allclose(model.p_fake(*[batch]), 1.0 - keras_p, atol=1e-4)


def test_given_input_scale_is_written_and_a_wrong_one_names_the_option(
    notebook_models: dict[str, Path], tmp_path: Path
) -> None:
    export_frame_model(notebook_models["0-255"], tmp_path / "a.onnx", threshold=0.5, input_scale="0-255")
    assert read_metadata(tmp_path / "a.onnx").input_scale == "0-255"
    with pytest.raises(ExportCheckError, match="--input-scale"):  # saturated on 0..255 probes
        export_frame_model(notebook_models["0-1"], tmp_path / "b.onnx", threshold=0.5, input_scale="0-255")
