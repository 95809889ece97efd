"""int8 variants: calibrated on real face crops, checked against fp32, loaded by the stream by precision."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dfstream.export.quantize import calibration_crops
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.faces import face_crops
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import ModelSet, model_files
from dfstream.stream.run_config import RunConfig


@pytest.fixture(scope="module")
def int8_models(stream_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("int8")
    shutil.copytree(stream_models, folder, dirs_exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "dfstream.cli", "quantize", str(folder), "--crops", "16"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return folder, out.stdout


def test_quantize_writes_checked_int8_graphs_with_metadata(int8_models: tuple[Path, str]) -> None:
    folder, stdout = int8_models
    assert "frame_cnn.int8.onnx: max |P_int8 - P_fp32|" in stdout
    assert "clip_encoder.int8.onnx: min cosine(int8, fp32)" in stdout
    models = ModelSet.load(folder, "cpu", "int8")
    assert models.frame.metadata.precision == "int8" and models.encoder.metadata.precision == "int8"
    assert models.head.metadata.precision == "fp32", "the head stays fp32"


def test_stream_runs_on_int8_graphs(int8_models: tuple[Path, str], tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """The int8 graphs are the ones that run (not fp32 loaded in their place): the loader names them, and
    model A's scores differ from the fp32 graph's on the same frames."""
    import json
    import logging

    folder, _ = int8_models
    scores = {}
    for precision in ("int8", "fp32"):
        out = tmp_path / f"{precision}.jsonl"
        cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=folder, precision=precision, out=str(out),
                        duration_s=3, window=False)
        with caplog.at_level(logging.INFO):
            summary, errors = run_stream(cfg)
        assert not errors and summary.to_dict()["frames"] > 0
        scores[precision] = {r["frame_id"]: r["score_frame"] for r in map(json.loads, out.read_text().splitlines())
                             if r["type"] == "score"}
    assert "frame_cnn.int8.onnx (int8" in caplog.text and "clip_encoder.int8.onnx (int8" in caplog.text
    common = sorted(set(scores["int8"]) & set(scores["fp32"]))[:20]
    assert common and any(scores["int8"][i] != scores["fp32"][i] for i in common)


def test_missing_precision_variant_is_named_and_a_partial_set_mixes_precisions(
    stream_models: Path, int8_models: tuple[Path, str], tmp_path: Path
) -> None:
    with pytest.raises(InputPathError, match=r"no int8 variant of any model .*'dfstream quantize'"):
        model_files(stream_models, "int8")
    shutil.copytree(stream_models, tmp_path, dirs_exist_ok=True)
    shutil.copy(int8_models[0] / "frame_cnn.int8.onnx", tmp_path)  # only model A passed its check
    files = model_files(tmp_path, "int8")
    assert (files["frame_cnn"].name, files["clip_encoder"].name) == ("frame_cnn.int8.onnx", "clip_encoder.onnx")


def test_calibration_needs_faces(tmp_path: Path) -> None:
    import numpy as np

    from tests.conftest import write_video

    blank = write_video(tmp_path / "blank.mp4", [np.zeros((64, 64, 3), np.uint8)] * 5)
    with pytest.raises(InputPathError, match="only 0 face crops found"):
        face_crops(blank)
    assert len(face_crops(SAMPLE_CLIP, limit=8)) == 8


def test_a_graph_that_fails_its_check_is_not_left_behind(
    stream_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dfstream.export import quantize
    from dfstream.stream.contract.exceptions import ExportCheckError

    shutil.copytree(stream_models, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(quantize, "INT8_PROB_TOL", 0.0)  # no int8 graph can pass
    with pytest.raises(ExportCheckError, match="int8 differs from fp32"):
        quantize.quantize_folder(tmp_path, face_crops(SAMPLE_CLIP, 16))
    assert "kept in fp32 besides the output layer:" in capsys.readouterr().out, "the search ran before giving up"
    assert not (tmp_path / "frame_cnn.int8.onnx").exists()  # `run --precision int8` never picks up an unchecked graph
    assert (tmp_path / "clip_encoder.int8.onnx").is_file()  # the graph that passed is kept


def test_auto_precision_takes_the_int8_graphs_that_exist_on_cpu(int8_models: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = int8_models
    files = model_files(folder, "auto")
    assert {role: p.name for role, p in files.items()} == {
        "frame_cnn": "frame_cnn.int8.onnx", "clip_encoder": "clip_encoder.int8.onnx", "clip_head": "clip_head.onnx"}
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    (tmp_path / "clip_encoder.int8.onnx").unlink()
    assert model_files(tmp_path, "auto")["clip_encoder"].name == "clip_encoder.onnx"
    models = ModelSet.load(tmp_path, "cpu", "auto")
    assert (models.frame.metadata.precision, models.encoder.metadata.precision) == ("int8", "fp32")


def test_a_variant_of_another_checkpoint_is_never_run(
    int8_models: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import onnx

    from dfstream.stream.contract.exceptions import MetadataError

    shutil.copytree(int8_models[0], tmp_path, dirs_exist_ok=True)
    retrained = onnx.load(str(tmp_path / "frame_cnn.onnx"))  # model A exported again from a new checkpoint
    for prop in retrained.metadata_props:
        if prop.key == "dfstream.source_sha256":
            prop.value = "0" * 64
    onnx.save(retrained, str(tmp_path / "frame_cnn.onnx"))
    with caplog.at_level("WARNING"):
        files = model_files(tmp_path, "auto")
    assert files["frame_cnn"].name == "frame_cnn.onnx", "the stale int8 graph is passed over"
    assert files["clip_encoder"].name == "clip_encoder.int8.onnx"
    assert "frame_cnn.int8.onnx was made from another checkpoint than frame_cnn.onnx" in caplog.text
    with pytest.raises(MetadataError, match=r"frame_cnn.int8.onnx was made from another checkpoint .*quantize'"):
        model_files(tmp_path, "int8")


def test_calibration_mixes_videos_and_image_folders(tmp_path: Path) -> None:
    import cv2
    import numpy as np

    folder = tmp_path / "frames" / "real"
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((40, 40, 3), 100 + i, np.uint8))
    crops = calibration_crops([SAMPLE_CLIP, tmp_path / "frames"], limit=8)
    assert len(crops) == 8
    sizes = [c.shape[0] for c in crops]
    assert sizes[::2] == [512] * 4 and sizes[1::2] == [40] * 4, "both halves hold both sources"
    with pytest.raises(InputPathError, match="calibration source not found"):
        calibration_crops([tmp_path / "nothing"])
    (tmp_path / "few").mkdir()
    with pytest.raises(InputPathError, match="only 0 face images found"):
        calibration_crops([tmp_path / "few"])


def test_only_convolutions_and_dense_layers_are_quantised_and_the_output_layer_stays_fp32(
    int8_models: tuple[Path, str],
) -> None:
    import onnx

    graph = onnx.load(str(int8_models[0] / "frame_cnn.int8.onnx")).graph
    weights = {t.name for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}

    def dequantized_weight(node: onnx.NodeProto) -> bool:
        return any(i in producers and producers[i].op_type == "DequantizeLinear" and producers[i].input[0] in weights
                   for i in node.input)

    int8_weights = {n.op_type for n in graph.node if dequantized_weight(n)}
    assert "Conv" in int8_weights and int8_weights <= {"Conv", "Gemm", "MatMul"}
    last_dense = [n for n in graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    assert not dequantized_weight(last_dense), "the output layer stays fp32"
    gates = {o for n in graph.node if n.op_type == "Sigmoid" for o in n.output}
    assert not [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] in gates]


def test_only_names_the_graphs_to_quantise(stream_models: Path, tmp_path: Path) -> None:
    shutil.copytree(stream_models, tmp_path, dirs_exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "dfstream.cli", "quantize", str(tmp_path), "--crops", "16",
                          "--only", "frame_cnn"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "frame_cnn.int8.onnx").is_file() and not (tmp_path / "clip_encoder.int8.onnx").exists()
    bad = subprocess.run([sys.executable, "-m", "dfstream.cli", "quantize", str(tmp_path), "--only", "clip_head"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "cannot quantise clip_head; choose among frame_cnn, clip_encoder" in bad.stderr
