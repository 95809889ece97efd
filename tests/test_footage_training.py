"""From imported footage to exported graphs and a cross-data-set table, and training that goes on after
an interruption: the path README's "Train on real footage" gives, at a miniature's scale."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.models import clip_checkpoints, clip_lstm, train_clip
from dfstream.models.configs import ImportConfig
from dfstream.models.data.footage_import import run_import
from dfstream.stream.contract.paths import SAMPLE_CLIP
from tests.conftest import read_frames, write_video

runner = CliRunner()
LENGTH = 36


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A FaceForensics++ miniature (one official pair per split, each pair with both its Deepfakes) imported."""
    frames = read_frames(SAMPLE_CLIP)
    root = tmp_path_factory.mktemp("ff")
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    fakes = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
    originals.mkdir(parents=True)
    fakes.mkdir(parents=True)
    (root / "splits").mkdir()
    for n, split in enumerate(("train", "val", "test")):
        a, b = f"{2 * n:03d}", f"{2 * n + 1:03d}"
        (root / "splits" / f"{split}.json").write_text(json.dumps([[a, b]]))
        for k, (who, other) in enumerate(((a, b), (b, a))):
            shift = 12 * n + 6 * k
            look = (lambda f: cv2.flip(f, 1)) if k else (lambda f: f)
            write_video(originals / f"{who}.mp4", [look(f) for f in frames[170 + shift : 170 + shift + LENGTH]])
            write_video(fakes / f"{who}_{other}.mp4", [look(f) for f in frames[95 + shift : 95 + shift + LENGTH]])
    out = tmp_path_factory.mktemp("ff-import")
    cfg = ImportConfig(kind="faceforensics", root=root, out=out, frames_per_video=4, clips_per_video=2)
    run_import(cfg, progress=False)
    return out


@pytest.mark.slow
def test_train_export_and_cross_table_from_an_import(tmp_path: Path, imported: Path) -> None:
    b_run, a_run, onnx = tmp_path / "model-b", tmp_path / "model-a", tmp_path / "onnx"
    _ok(["train", "clip", "--data", str(imported / "clips" / "train"), "--val-data", str(imported / "clips" / "val"),
         "--out", str(b_run), "--img-size", "32", "--epochs", "1", "--batch-size", "4"])
    _ok(["eval", "clip", "--model", str(b_run / "last_model.pth"), "--data", str(imported / "clips" / "val"),
         "--split", "all", "--img-size", "32", "--out", str(b_run / "val")])
    _ok(["train", "cnn", "--data", str(imported / "frames"), "--out", str(a_run), "--img-size", "32",
         "--epochs", "1", "--batch-size", "8"])
    _ok(["eval", "cnn", "--model", str(a_run / "best_model.keras"), "--data", str(imported / "frames"),
         "--out", str(a_run / "eval"), "--gradcam-samples", "0"])
    _ok(["export", str(a_run / "best_model.keras"), "-o", str(onnx), "--threshold-from",
         str(a_run / "eval" / "threshold.json")])
    _ok(["export", str(b_run / "last_model.pth"), "-o", str(onnx), "--img-size", "32", "--threshold-from",
         str(b_run / "val" / "threshold.json")])

    out = _ok(["eval", "cross", "--models", str(onnx), "--data", str(imported), "--out", str(tmp_path / "cross")])
    assert "| A | frame | Deepfakes |" in out and "| B | video | all |" in out
    rows = json.loads((tmp_path / "cross" / "cross.json").read_text())["rows"]
    got = {(r["model"], r["level"], r["method"]): r["report"] for r in rows}
    assert set(got) == {(m, lvl, k) for m, levels in (("A", ("frame", "video")), ("B", ("clip", "video")))
                        for lvl in levels for k in ("all", "Deepfakes")}
    # the test pair: 2 originals and 2 fakes, 4 frames or 2 clips each
    assert (got[("A", "frame", "all")]["n"], got[("A", "frame", "all")]["n_fake"]) == (16, 8)
    assert (got[("A", "video", "all")]["n"], got[("B", "clip", "all")]["n"], got[("B", "video", "all")]["n"]) == (
        4, 8, 4)
    assert all(0.0 <= r["auc"] <= 1.0 for r in got.values())
    scored = list(csv.DictReader((tmp_path / "cross" / "model_b_clips.csv").open()))
    assert {r["sample"].split("/")[0] for r in scored} == {"original", "Deepfakes"}


def test_clip_training_goes_on_after_an_interruption(tmp_path: Path, imported: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["train", "clip", "--data", str(imported / "clips" / "train"), "--val-data",
            str(imported / "clips" / "val"), "--img-size", "32", "--epochs", "3", "--batch-size", "4"]
    _ok([*args, "--out", str(tmp_path / "whole")])

    real_predict = train_clip.predict
    calls = 0

    def stop_in_epoch_two(*a: object, **k: object) -> tuple[np.ndarray, np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt
        return real_predict(*a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(train_clip, "predict", stop_in_epoch_two)
    stopped = runner.invoke(app, [*args, "--out", str(tmp_path / "cut")])
    assert stopped.exit_code == 130  # Ctrl-C, as the shell reports it
    monkeypatch.undo()
    assert torch.load(tmp_path / "cut" / clip_checkpoints.RESUME_NAME, weights_only=True)["epoch"] == 1
    other = runner.invoke(app, [*args[:-1], "2", "--out", str(tmp_path / "cut")])  # another batch size
    assert other.exit_code == 2 and "other options" in other.output
    _ok([*args, "--out", str(tmp_path / "cut")])
    assert not (tmp_path / "cut" / clip_checkpoints.RESUME_NAME).exists()
    history = list(csv.DictReader((tmp_path / "cut" / "history.csv").open()))
    assert [r["epoch"] for r in history] == ["1", "2", "3"]
    whole = clip_lstm.load_state(tmp_path / "whole" / "last_model.pth").state_dict()
    resumed = clip_lstm.load_state(tmp_path / "cut" / "last_model.pth").state_dict()
    diff = max(float((whole[k].float() - resumed[k].float()).abs().max()) for k in whole)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole), diff  # as if it had never stopped

