"""dfstream calibrate: real exported graphs refitted on a data build's validation split through ONNX Runtime."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.export.recalibrate import refit
from dfstream.stream.ort_sessions import calibrated, read_metadata


def _graph_bytes(path: Path) -> bytes:
    return onnx.load(str(path)).graph.SerializeToString()


def test_a_second_calibration_composes_with_the_first_into_one(stream_models: Path) -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    raw = 1 / (1 + np.exp(-(rng.normal(0, 1, 400) + 1.5 * y)))
    meta = dataclasses.replace(read_metadata(stream_models / "clip_head.onnx"), calibration=(0.5, 0.2), threshold=0.6)
    p = calibrated(raw, meta.calibration)  # what the runtime gives with the file as it is
    fit = refit(y, p, max_fpr=0.1)
    new = fit.applied_to(meta)
    assert new.calibration != meta.calibration and new.threshold == fit.threshold
    assert np.allclose(calibrated(raw, new.calibration), calibrated(p, fit.second), atol=1e-5)
    assert np.mean(calibrated(raw, new.calibration)[y == 0] >= new.threshold) <= 0.1


def test_calibrate_rewrites_metadata_only_and_the_runtime_keeps_the_cap(
    data_build: Path, stream_models: Path, tmp_path: Path
) -> None:
    from dfstream.models.eval_bundled import clip_scores
    from dfstream.stream.model_set import ModelSet

    out = tmp_path / "refitted"
    args = ["calibrate", str(stream_models), "--data", str(data_build), "--out", str(out), "--max-fpr", "0.25"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "frame_cnn.onnx: 33 validation samples" in result.output
    assert "clip_head.onnx: 11 validation samples" in result.output
    for name in ("frame_cnn.onnx", "clip_head.onnx"):
        assert _graph_bytes(out / name) == _graph_bytes(stream_models / name), "nodes and weights unchanged"
    before, after = read_metadata(stream_models / "clip_head.onnx"), read_metadata(out / "clip_head.onnx")
    assert after.source_sha256 == before.source_sha256 and after.role == before.role

    # a full set beside the refitted files, as the stream loads it
    (out / "clip_encoder.onnx").write_bytes((stream_models / "clip_encoder.onnx").read_bytes())
    models = ModelSet.load(out, device="cpu", precision="fp32")
    _, y, p = clip_scores(models, data_build / "clips" / "val")
    assert np.mean(p[y == 0] >= models.thresholds[1]) <= 0.25, "the threshold keeps its cap on what it was fitted on"


def test_bad_input_is_one_line(stream_models: Path, tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    result = CliRunner().invoke(app, ["calibrate", str(stream_models), "--data", str(tmp_path / "build"),
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    result = CliRunner().invoke(app, ["calibrate", str(stream_models), "--data", str(tmp_path), "--only", "encoder"])
    assert result.exit_code == 2 and "roles" in result.output and len(result.output.strip().splitlines()) == 1
