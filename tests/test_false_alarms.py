"""False-alarm measurement: the rates from score records, and the command on a real clip through
the real stream (tiny untrained models, so only the bookkeeping is checked, not the values)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.models.false_alarms import rates
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.contract.paths import SAMPLE_CLIP
from tests.conftest import read_frames


def _score(
    frame: float | None, clip: float | None, label: str, score: float = 0.2, track: int = 1
) -> dict[str, object]:
    return {"type": "score", "score_frame": frame, "score_clip": clip, "score": score, "label": label,
            "track_id": track}


def test_rates_use_each_models_own_threshold() -> None:
    records = [
        _score(0.9, None, "uncertain"),
        _score(0.1, None, "real"),
        _score(0.5, 0.7, "fake", 0.8),
        _score(0.2, 0.2, "real"),
        {"type": "label", "label": "fake"},
    ]
    r = rates(records, "clip.mp4", frame_threshold=0.5, clip_threshold=0.6)
    assert r.frames_scored == 4 and r.clip_frames == 2
    assert r.frame_model_rate == pytest.approx(2 / 4)  # 0.9 and 0.5 reach 0.5
    assert r.clip_model_rate == pytest.approx(1 / 2)
    assert r.label_fake_rate == pytest.approx(1 / 4)
    assert r.mean_score == pytest.approx((0.2 + 0.2 + 0.8 + 0.2) / 4)
    assert r.label_real_rate_after_1s is None  # no track got past its first second


def test_thresholds_are_those_of_the_graphs_the_stream_runs(tmp_path: Path, stream_models: Path) -> None:
    """On a CPU the stream runs model A's int8 graph where one exists, with its own metadata."""
    import dataclasses
    import shutil

    import onnx

    from dfstream.export.onnx_files import write_with_metadata
    from dfstream.models.false_alarms import model_thresholds
    from dfstream.stream.ort_sessions import read_metadata

    models = tmp_path / "models"
    shutil.copytree(stream_models, models)
    fp32 = read_metadata(models / "frame_cnn.onnx")
    variant = dataclasses.replace(fp32, precision="int8", threshold=0.321)  # same checkpoint, its own fit
    write_with_metadata(onnx.load(str(models / "frame_cnn.onnx")), variant, models / "frame_cnn.int8.onnx")
    frame_t, clip_t = model_thresholds(models)
    assert frame_t == pytest.approx(0.321) != fp32.threshold
    assert clip_t == read_metadata(models / "clip_head.onnx").threshold


def test_real_rate_counts_each_track_after_its_first_second() -> None:
    settling = [_score(0.1, None, "uncertain", track=t) for t in (1, 2) for _ in range(30)]
    after = [_score(0.1, 0.1, "real", track=1)] * 3 + [_score(0.9, 0.9, "fake", 0.8, track=2)]
    r = rates(settling + after, "clip.mp4", frame_threshold=0.5, clip_threshold=0.5)
    assert r.label_real_rate_after_1s == pytest.approx(3 / 4)


def test_no_scored_face_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no face was scored"):
        rates([{"type": "status"}], "empty.mp4", 0.5, 0.5)


def test_command_runs_the_stream_and_writes_the_rates(tmp_path: Path, stream_models: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", "false-alarms", "--source", str(SAMPLE_CLIP), "--models", str(stream_models), "--out", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    body = json.loads((tmp_path / "false_alarms.json").read_text())
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    scored = [r for r in records if r["type"] == "score"]
    assert body["frames_scored"] == len(scored) == 240  # one face in every frame of the 8 s clip
    assert body["clip_frames"] == 240 - 15  # the clip score starts once 16 crops are buffered
    assert body["label_fake_rate"] == pytest.approx(sum(r["label"] == "fake" for r in scored) / 240)
    assert "frames scored" in result.output


def test_through_a_call_codec_the_stream_scores_what_the_codec_returned(tmp_path: Path, stream_models: Path) -> None:
    """--through vp8: every frame goes through VP8 at the call's bitrate and back before the stream."""
    result = CliRunner().invoke(app, ["eval", "false-alarms", "--source", str(SAMPLE_CLIP), "--models",
                                      str(stream_models), "--out", str(tmp_path), "--through", "vp8",
                                      "--bitrate", "300000"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    body = json.loads((tmp_path / "false_alarms.json").read_text())
    assert (body["through"], body["bitrate"], body["frames_scored"]) == ("vp8", 300_000, 240)
    sent = read_frames(tmp_path / "sample_face.vp8-300k.mkv")
    original = read_frames(SAMPLE_CLIP)
    assert len(sent) == len(original) == 240
    psnr = [cv2.PSNR(a, b) for a, b in zip(original[::40], sent[::40], strict=True)]
    assert all(22.0 < p < 45.0 for p in psnr), psnr  # the codec's loss, on the same pictures
    assert "through vp8 at 300 kbps and back" in result.output


def test_command_refuses_a_missing_video(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "false-alarms", "--source", str(tmp_path / "none.mp4")])
    assert result.exit_code == 2 and "video not found" in result.output


def test_card_tables_show_what_the_reports_hold(tmp_path: Path) -> None:
    from dfstream.models.card_tables import tables

    def report(auc: float | None, n: int, n_fake: int) -> dict[str, object]:
        return {"threshold": 0.42, "auc": auc, "f1": 0.5, "accuracy": 0.75, "n": n, "n_fake": n_fake}

    a = tmp_path / "model-a" / "eval"
    a.mkdir(parents=True)
    (a / "metrics.json").write_text(json.dumps(report(0.91, 40, 20) | {"auc_interval": [0.834, 0.97]}))
    (a / "metrics_by_kind.json").write_text(json.dumps({"sbi": report(0.8, 30, 10), "swap": report(None, 30, 10)}))
    fa = tmp_path / "false-alarms" / "clip"
    fa.mkdir(parents=True)
    body = {
        "source": "x/movie.avi",
        "frames_scored": 68,
        "frame_model_rate": 0.25,
        "clip_model_rate": None,
        "label_fake_rate": 0.1,
        "mean_score": 0.3,
        "label_real_rate_after_1s": 0.95,
    }
    (fa / "false_alarms.json").write_text(json.dumps(body))
    text = "\n".join(tables(tmp_path))
    assert "| all | 0.910 | 0.83–0.97 | 0.500 | 0.750 | 40 (20) |" in text and "threshold 0.420 from val" in text
    assert "| sbi | 0.800 | n/a |" in text and "| swap | n/a | n/a |" in text
    assert "| movie.avi | 68 | 25.0% | n/a | 10.0% | 95.0% | 0.300 |" in text
    assert "Model B" not in text  # no model B reports were written


def test_the_kinds_table_puts_a_left_out_kind_in_bold(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dfstream.cli import app

    for name, left_out, aucs in (("all", None, (0.7, 0.8, 0.6)), ("no-sbi", "sbi", (0.6, 0.55, 0.65))):
        run = tmp_path / "kinds" / name
        (run / "kinds").mkdir(parents=True)
        (run / "test").mkdir()
        (run / "history.json").write_text(json.dumps({"config": {"exclude": left_out}}))
        (run / "test" / "metrics.json").write_text(json.dumps({"auc": aucs[0]}))
        rows = [{"kind": "all", "auc": aucs[1]}, {"kind": "sbi", "auc": aucs[2]}]
        (run / "kinds" / "kinds.json").write_text(json.dumps({"rows": rows}))
    result = CliRunner().invoke(app, ["eval", "card", str(tmp_path), "--table", "kinds"])
    assert result.exit_code == 0, result.output
    assert "| all | — | 0.700 | 0.800 | 0.600 | n/a |" in result.output
    assert "| no-sbi | sbi | 0.600 | 0.550 | **0.650** | n/a |" in result.output
    missing = CliRunner().invoke(app, ["eval", "card", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "runs folder not found" in missing.output


def test_the_distill_table_names_each_model_a_target(tmp_path: Path) -> None:
    from dfstream.models.card_tables import distill_table

    runs = {"model-a": (0.5, (0.7, 0.61, 0.6, 0.62, 0.63)), "distill/labels-only": (1.0, (0.8, 0.55, 0.5, 0.6, 0.57))}
    for name, (hard, (val, test, sbi, swap, clip)) in runs.items():
        run = tmp_path / name
        (run / "eval").mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"teacher": "runs/model-b", "hard_weight": hard}))
        (run / "history.csv").write_text(f"epoch,val_auc\n0,{val - 0.1}\n1,{val}\n2,{val - 0.2}\n")
        (run / "eval" / "metrics.json").write_text(json.dumps({"auc": test}))
        (run / "eval" / "metrics_by_kind.json").write_text(json.dumps({"sbi": {"auc": sbi}, "swap": {"auc": swap}}))
        (run / "eval" / "metrics_clip_level.json").write_text(json.dumps({"all": {"auc": clip}}))
    (tmp_path / "distill" / "unevaluated").mkdir()
    text = "\n".join(distill_table(tmp_path))
    assert "| model-a | 0.5 label + 0.5 teacher | 0.700 | 0.610 | 0.600 | 0.620 | 0.630 |" in text
    assert "| labels-only | labels only, teacher's pool | 0.800 | 0.550 | 0.500 | 0.600 | 0.570 |" in text
    assert "unevaluated" not in text


def test_the_fusion_table_picks_model_b_s_share_on_validation(tmp_path: Path) -> None:
    """On validation model A ranks backwards and model B right but for one pair, so any share of A
    costs a pair more: the table's best share is 1.0, and it is in bold."""
    import csv

    from dfstream.models.card_tables import fusion_table

    a, b_val, b_test = tmp_path / "model-a" / "eval", tmp_path / "model-b" / "val", tmp_path / "model-b" / "test"
    for d in (a, b_val, b_test):
        d.mkdir(parents=True)

    def write(path: Path, rows: list[tuple[str, int, float]]) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["sample", "y_true", "p_fake", "y_pred"])
            w.writerows((name, y, p, 0) for name, y, p in rows)

    real = [(0.9, 0.2), (0.8, 0.25), (0.8, 0.3), (0.7, 0.61)]  # (model A, model B) per clip
    fake = [(0.1, 0.6), (0.4, 0.62), (0.2, 0.7), (0.3, 0.8)]
    clips = [(f"v{i}", 0, ab) for i, ab in enumerate(real)] + [(f"s{i}", 1, ab) for i, ab in enumerate(fake)]
    for split, a_csv, b_dir in (("val", "val_per_sample.csv", b_val), ("test", "per_sample.csv", b_test)):
        frames = [(f"frames/{split}/x/{'sbi__' if y else ''}{v}_{k}.jpg", y, pa)
                  for v, y, (pa, _) in clips for k in (0, 4)]
        write(a / a_csv, frames)
        write(b_dir / "per_sample.csv", [(f"{'sbi' if y else 'original'}/{v}", y, pb) for v, y, (_, pb) in clips])
    (a / "threshold.json").write_text(json.dumps({"threshold": 0.5, "calibration": [1.0, 0.0]}))
    (b_val / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    rows = fusion_table(tmp_path)
    assert "| 0.0 | 0.000 | 0.000 |" in rows and "| 0.9 | 0.875 | 0.875 |" in rows
    assert rows[-2] == "| ***1.0*** (the stream's) | **0.938** | **0.938** |"  # bold: validation's best
    missing = fusion_table(tmp_path / "none")
    assert missing[0].startswith("no fusion table:") and "val_per_sample.csv" in missing[0]
    (b_val / "threshold.json").unlink()  # a val run that stopped before its threshold
    assert fusion_table(tmp_path)[0] == f"no fusion table: {b_val / 'threshold.json'} is missing (run make models)"


def test_a_false_alarm_cap_keeps_a_weak_model_from_flagging_everything() -> None:
    import numpy as np

    from dfstream.models.metrics import f1_optimal_threshold

    rng = np.random.default_rng(0)
    y = np.array([0] * 100 + [1] * 100)
    p = np.concatenate([rng.uniform(0.0, 1.0, 100), rng.uniform(0.05, 1.0, 100)])  # barely better than chance
    free = f1_optimal_threshold(y, p)
    capped = f1_optimal_threshold(y, p, max_fpr=0.05)
    assert np.mean(p[y == 0] >= free) > 0.5, "the unconstrained F1 optimum flags most genuine samples"
    assert np.mean(p[y == 0] >= capped) <= 0.05
    all_genuine_high = np.concatenate([np.full(100, 0.9), np.full(100, 0.8)])
    assert f1_optimal_threshold(y, all_genuine_high, max_fpr=0.05) > 0.9  # nothing qualifies: above every genuine


def test_fused_table_mixes_calibrated_centred_scores_per_clip(tmp_path: Path) -> None:
    """Model A ranks the clips right, model B ranks them backwards but weakly: the fused score
    follows the stream's mix, so it ranks right; each video is matched across the two reports."""
    import csv

    from dfstream.models.fused import fused_reports

    a, b_test, b_val = tmp_path / "a", tmp_path / "b_test", tmp_path / "b_val"
    for d in (a, b_test, b_val):
        d.mkdir()
    videos = [("original", f"v{i}", 0) for i in range(4)] + [("sbi", f"s{i}", 1) for i in range(4)]
    with (a / "per_sample.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample", "y_true", "p_fake", "y_pred"])
        for kind, video, y in videos:
            folder = "fake" if y else "real"
            for i in (0, 4):
                w.writerow([f"frames/test/{folder}/{kind}__{video}_{i}.jpg", y, 0.9 if y else 0.1, y])
    with (b_test / "per_sample.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sample", "y_true", "p_fake", "y_pred"])
        for kind, video, y in videos:
            w.writerow([f"{kind}/{video}", y, 0.45 if y else 0.55, 0])
    (a / "threshold.json").write_text(json.dumps({"threshold": 0.5, "calibration": [1.0, 0.0]}))
    (b_val / "threshold.json").write_text(json.dumps({"threshold": 0.5}))
    reports = fused_reports(a, b_test, b_val, clip_weight=0.5)
    assert reports["all"].n == 8 and reports["all"].auc == pytest.approx(1.0)
    assert reports["sbi"].n == 8
