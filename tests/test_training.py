"""Train → evaluate → export through the CLI on tiny datasets in both notebooks' layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.stream.ort_sessions import calibrated, load_model

pytestmark = pytest.mark.slow
runner = CliRunner()


def _ok(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_model_a_train_eval_export(tmp_path: Path, frame_dataset: Path) -> None:
    run = tmp_path / "run"
    _ok(
        [
            "train",
            "cnn",
            "--data",
            str(frame_dataset),
            "--out",
            str(run),
            "--img-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "8",
        ]
    )
    assert (run / "best_model.keras").is_file() and (run / "last_model.keras").is_file()
    history = list(csv.DictReader((run / "history.csv").open()))
    assert len(history) == 2
    # each file carries its card (and still loads in Keras: the evaluation below reads best_model.keras)
    from dfstream.models.checkpoint_cards import read_card

    best, last = read_card(run / "best_model.keras"), read_card(run / "last_model.keras")
    assert best is not None and last is not None
    assert last["recipe"] == "frame folders" and last["architecture"] == {"model": "CNN + CBAM", "img_size": 32}
    assert last["metrics"]["epoch"] == 2 and last["metrics"]["val_auc"] == float(history[-1]["val_auc"])
    assert best["metrics"]["val_auc"] == max(float(r["val_auc"]) for r in history)
    assert last["config"]["batch_size"] == 8 and last["data"] is None
    shown = _ok(["inspect", str(run / "best_model.keras")])
    assert json.loads(shown)["metrics"] == best["metrics"]

    report_dir = tmp_path / "eval"
    out = _ok(
        [
            "eval",
            "cnn",
            "--model",
            str(run / "best_model.keras"),
            "--data",
            str(frame_dataset),
            "--out",
            str(report_dir),
            "--gradcam-samples",
            "4",
        ]
    )
    assert "AUC" in out and "threshold" in out
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert metrics["n"] == 16 and metrics["n_fake"] == 8 and 0 < metrics["threshold"] < 1
    assert sum(map(sum, metrics["confusion"])) == 16
    rows = list(csv.DictReader((report_dir / "per_sample.csv").open()))
    assert len(rows) == 16 and {r["y_true"] for r in rows} == {"0", "1"}
    val_rows = list(csv.DictReader((report_dir / "val_per_sample.csv").open()))
    assert val_rows and all("/val/" in r["sample"] for r in val_rows)  # validation scores, per sample
    assert json.loads((run / "config.json").read_text())["epochs"] == 2  # the distillation table reads it
    for png in ("roc.png", "confusion.png", "threshold.png"):
        assert (report_dir / png).stat().st_size > 1000
    assert len(list((report_dir / "gradcam").glob("*.png"))) == 4
    clip_level = json.loads((report_dir / "metrics_clip_level.json").read_text())
    assert clip_level["all"]["n"] == 2  # frames named {video}_{i}: real_0..7 and fake_0..7 are two clips

    onnx_dir = tmp_path / "onnx"
    out = _ok(
        [
            "export",
            str(run / "best_model.keras"),
            "-o",
            str(onnx_dir),
            "--threshold-from",
            str(report_dir / "threshold.json"),
        ]
    )
    assert "max abs diff" in out
    model = load_model(onnx_dir / "frame_cnn.onnx", "frame_cnn")
    decision = json.loads((report_dir / "threshold.json").read_text())
    assert decision["threshold_raw"] == pytest.approx(metrics["threshold"])  # the report's operating point
    assert model.metadata.calibration == pytest.approx(tuple(decision["calibration"]))
    raw = np.array([metrics["threshold"]], np.float32)  # on the calibrated scale the runtime compares with
    assert model.metadata.threshold == pytest.approx(float(calibrated(raw, model.metadata.calibration)[0]), abs=1e-5)


def test_model_b_train_eval(tmp_path: Path, clip_dataset: Path) -> None:
    run = tmp_path / "run"
    _ok(
        [
            "train",
            "clip",
            "--data",
            str(clip_dataset),
            "--out",
            str(run),
            "--img-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "4",
        ]
    )
    assert (run / "mediapipe_model.pth").is_file() and (run / "last_model.pth").is_file()
    assert [r["epoch"] for r in csv.DictReader((run / "history.csv").open())] == ["1", "2"]
    # the optimizer stepped: the head's weights moved from the seeded start (no running statistics in
    # them, so a forward pass alone cannot change them)
    import torch

    from dfstream.models import clip_lstm
    from dfstream.models.configs import TrainClipConfig

    torch.manual_seed(TrainClipConfig.model_fields["seed"].default)
    start = clip_lstm.ClipDetector().state_dict()
    trained = clip_lstm.load_state(run / "last_model.pth").state_dict()
    moved = [k for k in start if k.startswith(("lstm.", "fc.")) and not torch.equal(start[k], trained[k])]
    assert any(k.startswith("lstm.") for k in moved) and any(k.startswith("fc.") for k in moved)
    # each checkpoint says what it is: the best epoch's F1 in the best one, the last epoch's in the last
    from dfstream.models.checkpoint_cards import read_card

    history = list(csv.DictReader((run / "history.csv").open()))
    last, best = read_card(run / "last_model.pth"), read_card(run / "mediapipe_model.pth")
    assert last is not None and best is not None
    assert last["recipe"] == best["recipe"] == "fixed clips"
    assert last["architecture"]["img_size"] == 32 and last["config"]["batch_size"] == 4
    assert last["metrics"]["val_f1"] == float(history[-1]["val_f1"]) and last["metrics"]["epoch"] == 2
    best_row = max(history, key=lambda r: float(r["val_f1"]))  # the first of equal F1s is the one kept
    assert best["metrics"]["epoch"] == int(best_row["epoch"]) and best["data"] is None  # not a data build

    report_dir = tmp_path / "eval"
    out = _ok(
        [
            "eval",
            "clip",
            "--model",
            str(run / "mediapipe_model.pth"),
            "--data",
            str(clip_dataset),
            "--out",
            str(report_dir),
            "--img-size",
            "32",
            "--split",
            "all",
        ]
    )
    assert "F1" in out
    metrics = json.loads((report_dir / "metrics.json").read_text())
    assert metrics["n"] == 11 and metrics["n_fake"] == 6
    assert "fake" in (report_dir / "classification_report.txt").read_text()
    assert (report_dir / "roc.png").is_file() and (report_dir / "confusion.png").is_file()
    by_kind = json.loads((report_dir / "metrics_by_kind.json").read_text())
    assert set(by_kind) == {"Deepfakes", "FaceSwap"}
    assert [by_kind[k]["n"] for k in ("Deepfakes", "FaceSwap")] == [8, 8]  # 3 fakes of the kind + 5 reals

    # reading the clips in a worker process, on the device asked for, scores the same clips alike
    again = tmp_path / "eval-worker"
    _ok(["eval", "clip", "--model", str(run / "mediapipe_model.pth"), "--data", str(clip_dataset), "--out", str(again),
         "--img-size", "32", "--split", "all", "--device", "cpu", "--workers", "1"])
    assert (again / "per_sample.csv").read_text() == (report_dir / "per_sample.csv").read_text()
    refused = runner.invoke(app, ["eval", "clip", "--model", str(run / "last_model.pth"), "--data", str(clip_dataset),
                                  "--out", str(tmp_path / "x"), "--device", "tpu"])
    assert refused.exit_code == 2 and "device" in refused.output and "Traceback" not in refused.output


def test_model_b_validates_on_a_separate_folder(
    tmp_path: Path, clip_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--val-data (e.g. held-out identities): all of --data trains, the other folder validates."""
    caplog.set_level("INFO")
    run = tmp_path / "run"
    args = ["train", "clip", "--data", str(clip_dataset), "--val-data", str(clip_dataset), "--out", str(run)]
    _ok([*args, "--img-size", "32", "--epochs", "1", "--batch-size", "4", "--pretrain-epochs", "2"])
    assert "train: 11 clips (real 5, fake 6)" in caplog.text
    assert "pretrain epoch 2: loss" in caplog.text and "val frame AUC" in caplog.text
    assert "val: 11 clips (real 5, fake 6)" in caplog.text
