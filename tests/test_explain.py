"""``--explain``: model A's attention map from the real graph into records and onto the views."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from dfstream.export.attention import ATTENTION_OUTPUT
from dfstream.stream.contract.exceptions import MetadataError
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import ATTENTION_GRID, Frame
from dfstream.stream.crops import crop_face, square_around, to_model_input
from dfstream.stream.explain import Attention
from dfstream.stream.model_set import ModelSet
from dfstream.stream.ort_sessions import load_model
from dfstream.stream.overlay import annotate
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import ScoreRecord, check_record
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import open_source
from tests.conftest import pipeline_options, read_frames
from tests.test_pipeline import _Recording

FRAMES = 6


def _strip_attention(src: Path, dst: Path) -> Path:
    """A models folder whose frame_cnn.onnx has no attention output (as exported before --explain)."""
    shutil.copytree(src, dst)
    model = onnx.load(str(dst / "frame_cnn.onnx"))
    kept = [o for o in model.graph.output if o.name != ATTENTION_OUTPUT]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    props = [p for p in model.metadata_props if p.key != "dfstream.attention_output"]
    del model.metadata_props[:]
    model.metadata_props.extend(props)
    onnx.save(model, str(dst / "frame_cnn.onnx"))
    return dst


def _score(models_dir: Path, explain: bool) -> tuple[list[ScoreRecord], list[np.ndarray], _Recording]:
    models = ModelSet.load(models_dir, "cpu")
    source = open_source(str(SAMPLE_CLIP))
    pipeline = Pipeline(models, [source], SinkSet([]), pipeline_options(explain=explain))
    stream = pipeline.streams[0]
    recorder = stream.faces = _Recording(stream.faces)  # type: ignore[assignment]
    records, faces = [], []
    for i, image in enumerate(read_frames(SAMPLE_CLIP, FRAMES)):
        (_, got), = pipeline.process([(stream, Frame(source.name, i, 1.0, 0, image))])
        records += got
        faces.append(recorder.last[0])
    recorder.close()
    return records, faces, recorder


def test_records_carry_the_graphs_attention_as_a_grid_over_the_crop(stream_models: Path) -> None:
    records, faces, _ = _score(stream_models, explain=True)
    frame_model = load_model(stream_models / "frame_cnn.onnx", "frame_cnn", "cpu")
    models = ModelSet.load(stream_models, "cpu")
    for record, face, image in zip(records, faces, read_frames(SAMPLE_CLIP, FRAMES), strict=True):
        data = record.to_dict()
        assert check_record(data) == []
        grid = np.asarray(data["attention"]["grid"])
        assert grid.shape == (ATTENTION_GRID, ATTENTION_GRID)
        cx, cy, side = square_around(face.bbox)
        assert data["attention"]["box"] == [round(cx - side / 2), round(cy - side / 2), round(side), round(side)]
        crop = to_model_input([crop_face(image, face.bbox, models.frame_input.size)], models.frame_input)
        _, maps = frame_model.p_fake_and(ATTENTION_OUTPUT, crop)
        expected = cv2.resize(maps[0], (ATTENTION_GRID, ATTENTION_GRID), interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(grid, expected, atol=0.006)  # rounded to 2 decimals
    assert len({tuple(np.asarray(r.to_dict()["attention"]["grid"]).ravel()) for r in records}) > 1


def test_without_explain_records_have_no_attention(stream_models: Path) -> None:
    records, _, _ = _score(stream_models, explain=False)
    assert all("attention" not in r.to_dict() for r in records)


def test_a_model_without_the_output_still_runs_with_explain(
    stream_models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = _strip_attention(stream_models, tmp_path / "old")
    assert not ModelSet.load(old, "cpu").explains
    records, _, _ = _score(old, explain=True)
    assert "has no attention output" in caplog.text
    with_map, _, _ = _score(stream_models, explain=True)
    assert all("attention" not in r.to_dict() and check_record(r.to_dict()) == [] for r in records)
    assert [r.score_frame for r in records] == [r.score_frame for r in with_map]


def test_metadata_naming_a_missing_output_is_refused(stream_models: Path, tmp_path: Path) -> None:
    old = _strip_attention(stream_models, tmp_path / "old")
    model = onnx.load(str(old / "frame_cnn.onnx"))
    model.metadata_props.add(key="dfstream.attention_output", value="nowhere")
    onnx.save(model, str(old / "frame_cnn.onnx"))
    with pytest.raises(MetadataError, match="'nowhere', which is not an output of the graph"):
        load_model(old / "frame_cnn.onnx", "frame_cnn", "cpu")


def test_the_heatmap_is_drawn_inside_the_crop_square_only() -> None:
    image = np.full((240, 320, 3), 128, np.uint8)
    grid = np.zeros((ATTENTION_GRID, ATTENTION_GRID), np.float32)
    grid[3:6, 3:11] = 0.8  # the eyes' band
    base = ScoreRecord(1.0, "s", 0, 1, (120, 80, 60, 70), 0.2, None, 0.2, "real", {})
    plain = annotate(image, [base])
    explained = annotate(image, [ScoreRecord(**{**base.__dict__, "attention": Attention((100, 60, 100, 100), grid)})])
    changed = np.any(plain != explained, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 300
    assert xs.min() >= 100 and xs.max() < 200 and ys.min() >= 60 and ys.max() < 160
    band = changed[60 + 21 : 60 + 43, 100 + 21 : 100 + 79].mean()
    assert band > 0.9  # where attention is high
