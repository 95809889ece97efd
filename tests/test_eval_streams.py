"""Labels on manipulated streams: the per-clip bookkeeping on hand-made records, the clip writer's
manipulated stretch, and the command through the real stream (tiny untrained models, so only the
bookkeeping is checked, not the values)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.models.data.bank import FaceBank, read_bank
from dfstream.models.data.sample_clip import ClipTiming, write_motion_clip
from dfstream.models.eval_streams import RULES, clip_labels, evaluate_streams, relabel, rule_lines
from dfstream.stream.scoring import ScoringConfig
from tests.conftest import read_frames

TIMING = ClipTiming(seconds=2.0, fps=30, fake_from=0.5, fake_to=1.0)  # frames 15–29 manipulated


def _records(p_in: float, p_out: float) -> list[dict[str, object]]:
    return [{"type": "score", "frame_id": i, "track_id": 1, "score_frame": None,
             "score_clip": p_in if TIMING.manipulated(i) else p_out} for i in range(60)]  # fmt: skip


def test_an_unsmoothed_label_follows_the_scores_exactly() -> None:
    config = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5, ema_alpha=1.0, band=0.02)
    c = clip_labels("x", "sbi", _records(0.9, 0.1), config, TIMING)
    assert c.frames == 60
    assert c.fake_on_manipulated == 1.0 and c.first_fake == 0
    assert c.fake_on_genuine == 0.0 and c.real_on_genuine == 1.0  # frames 30–59, after the first second
    assert c.score_auc == 1.0
    assert c.changes == 3  # uncertain → real (frame 2) → fake (15) → real (30)
    assert c.clip_score_genuine == pytest.approx(0.1) and c.clip_score_manipulated is None  # no window of 16 fits


def test_model_b_means_count_only_windows_wholly_on_one_side() -> None:
    timing = ClipTiming(seconds=4.0, fps=30, fake_from=1.0, fake_to=3.0)  # frames 30–89 manipulated
    records = [{"type": "score", "frame_id": i, "track_id": 1, "score_frame": None,
                "score_clip": 0.9 if timing.manipulated(i) else 0.2} for i in range(120)]  # fmt: skip
    records[50]["score_clip"] = 0.6  # inside the stretch, window wholly manipulated
    records[95]["score_clip"] = 0.0  # after the stretch, window still holds manipulated frames: left out
    c = clip_labels("x", "swap", records, ScoringConfig(frame_threshold=0.5, clip_threshold=0.5), timing)
    assert c.clip_score_manipulated == pytest.approx((0.9 * 44 + 0.6) / 45)  # frames 45–89
    assert c.clip_score_genuine == pytest.approx(0.2)  # frames 0–29 and 105–119


def test_smoothing_and_the_band_delay_the_label() -> None:
    config = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5, ema_alpha=0.3, band=0.1)
    c = clip_labels("x", "sbi", _records(0.65, 0.3), config, TIMING)
    assert c.first_fake is not None and 0 < c.first_fake < 15
    assert c.fake_on_manipulated == pytest.approx((15 - c.first_fake) / 15)
    assert c.fake_on_genuine > 0  # the smoothed score stays over the band for a few frames after the stretch
    never = clip_labels("x", "sbi", _records(0.55, 0.3), config, TIMING)  # inside the band: never fake
    assert never.first_fake is None and never.fake_on_manipulated == 0.0


def test_each_track_is_replayed_on_its_own() -> None:
    config = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5, ema_alpha=1.0, band=0.02)
    records = [{"track_id": t, "score_frame": None, "score_clip": p} for _ in range(4) for t, p in ((1, 0.9), (2, 0.1))]
    labels = [lab for _, lab in relabel(records, config)]
    assert labels[-2:] == ["fake", "real"]


def test_the_clip_is_manipulated_only_in_its_stretch(tmp_path: Path, face_bank_path: Path) -> None:
    bank = read_bank(face_bank_path)

    def white(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        assert points.shape == (468, 2)
        return np.full_like(frame, 255)

    timing = ClipTiming(seconds=1.0, fps=10, fake_from=0.3, fake_to=0.6)
    counts = write_motion_clip(bank.images[0], bank.points[0], tmp_path / "c.mp4", white, timing, size=(160, 120))
    assert counts == {"genuine": 7, "manipulated": 3}
    bright = [float(f.mean()) > 240 for f in read_frames(tmp_path / "c.mp4")]
    assert bright == [timing.manipulated(i) for i in range(10)]


def test_evaluation_replays_the_streams_own_labels(tmp_path: Path, face_bank_path: Path,
                                                   stream_models: Path) -> None:  # fmt: skip
    full = read_bank(face_bank_path)
    bank = FaceBank(full.images[:2], full.points[:2], ("pkg/a", "pkg/b"))  # identities are package/person
    report = evaluate_streams(bank, stream_models, tmp_path, timing=TIMING)
    assert json.loads((tmp_path / "streams.json").read_text()) == report
    stream = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5)  # the stream's own rule
    rule = {"ema_alpha": stream.ema_alpha, "band": stream.band}
    default = next(r for r in report["rules"] if r["summary"]["rule"] == rule)
    assert [(c["kind"], c["frames"]) for c in default["clips"]] == [("sbi", 60), ("sbi-sharp", 60), ("swap", 60)] * 2
    for clip in default["clips"]:
        lines = (tmp_path / "records" / f"{clip['clip']}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        scored = [r for r in records if r["type"] == "score"]
        fake = [r["label"] == "fake" for r in scored if TIMING.manipulated(r["frame_id"])]
        assert clip["fake_on_manipulated"] == pytest.approx(sum(fake) / len(fake))
    assert sorted(p.name for p in (tmp_path / "records").iterdir()) == [
        "00-pkg_a-sbi-sharp.jsonl", "00-pkg_a-sbi.jsonl", "00-pkg_a-swap.jsonl",
        "01-pkg_b-sbi-sharp.jsonl", "01-pkg_b-sbi.jsonl", "01-pkg_b-swap.jsonl"]
    table = rule_lines(report)
    assert len(table) == 2 + len(RULES) and len({row.count("|") for row in table}) == 1
    assert sum("(stream)" in row for row in table) == 1
    assert (tmp_path / "labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shutil.rmtree(tmp_path / "clips")
    assert evaluate_streams(bank, stream_models, tmp_path, timing=TIMING, reuse=True) == report
    assert not (tmp_path / "clips").exists()  # replayed from the records alone


def test_command_refuses_a_missing_bank(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "streams", "--faces", str(tmp_path / "none.npz")])
    assert result.exit_code == 2 and "face bank not found" in result.output


def test_sample_clip_command_refuses_a_missing_photo(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "sample-clip", "--photo", str(tmp_path / "no.jpg"),
                                      "--out", str(tmp_path / "c.mp4")])  # fmt: skip
    assert result.exit_code == 2 and "cannot read" in result.output
    assert not (tmp_path / "c.mp4").exists()
