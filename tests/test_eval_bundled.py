"""dfstream eval bundled: real exported graphs through ONNX Runtime on labelled splits, in make models' layout."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfstream.cli import app


def _rows(path: Path) -> dict[str, float]:
    with path.open() as f:
        return {r["sample"]: float(r["p_fake"]) for r in csv.DictReader(f)}


def test_scores_are_the_stream_runtimes_and_the_card_reads_them(
    data_build: Path, stream_models: Path, tmp_path: Path
) -> None:
    from dfstream.stream.model_set import ModelSet

    out = tmp_path / "bundled"
    args = ["eval", "bundled", "--data", str(data_build), "--out", str(out), "--models", str(stream_models),
            "--precision", "fp32"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "model B, test clips: AUC" in result.output and "clip_head: clip_head.onnx (fp32" in result.output

    clips = _rows(out / "model-b" / "test" / "per_sample.csv")
    assert len(clips) == 11 and len(_rows(out / "model-a" / "eval" / "val_per_sample.csv")) == 11 * 3
    models = ModelSet.load(stream_models, device="cpu", precision="fp32")
    folder, size = data_build / "clips" / "test" / "FaceSwap", models.clip_input.size
    crops = [cv2.resize(cv2.imread(str(folder / f"faceswap01_{i}.jpg")), (size, size)) for i in range(16)]
    lmks = np.stack([np.load(folder / f"faceswap01_{i}.npy") for i in range(16)]).astype(np.float32)
    expected = models.clip_scores([np.concatenate([models.embed(crops), lmks], axis=1)])[0]
    assert clips["FaceSwap/faceswap01"] == pytest.approx(float(expected), abs=2e-6)  # what the stream would say

    fusion = CliRunner().invoke(app, ["eval", "card", str(out), "--table", "fusion"])
    assert fusion.exit_code == 0 and "| model B's share | val clip AUC (11 clips) | test clip AUC (11 clips) |" in (
        fusion.output
    )


def test_a_data_build_without_its_frames_is_a_one_line_error(stream_models: Path, tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    args = ["eval", "bundled", "--data", str(tmp_path / "build"), "--out", str(tmp_path / "o"),
            "--models", str(stream_models)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "'val' split folder not found" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_within_face_auc_ranks_each_faces_fakes_against_its_own_genuine_clips() -> None:
    from dfstream.models.eval_bundled import by_face, within_face_aucs

    names = ["original/anne-f029-original-00", "original/anne-f029-original-01", "sbi/anne-f029-sbi-00",
             "original/bar-2-f030-original-00", "swap/bar-2-f030-swap-00", "swap/bar-2-f030-swap-01",
             "original/lone-f031-original-00", "notebook_video"]
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1])
    p = np.array([0.9, 0.95, 0.92, 0.1, 0.2, 0.05, 0.5, 0.5])  # anne scores high either way
    assert within_face_aucs(names, y, p) == {"anne-f029": 0.5, "bar-2-f030": 0.5}  # one-class faces are left out
    faces = by_face(names, y, p)
    assert faces["anne-f029"] == {"auc": 0.5, "genuine_mean": pytest.approx(0.925), "fake_mean": pytest.approx(0.92)}
    assert faces["lone-f031"] == {"auc": None, "genuine_mean": 0.5, "fake_mean": None}
