"""Imported face models in the stream: every record carries each model's score and its age, a slow
model never holds a frame back, fusion weights do what they say, the bundled records stay as they were."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dfstream.stream.contract.paths import BUNDLED_MODELS, SAMPLE_CLIP
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.face_models import FaceJob, FaceModelScores, FaceModelStage
from dfstream.stream.local_run import run_stream
from dfstream.stream.records import check_record
from dfstream.stream.run_config import RunConfig
from dfstream.stream.scoring import ScoringConfig, TrackScorer, Vote, centred
from tests.conftest import pipeline_options
from tests.test_import_detectors import tiny_classifier


def _scores(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in lines if r["type"] == "score"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("imported")
    graph = tiny_classifier(folder / "raw.onnx", size=96)
    spec = folder / "spec.yaml"
    spec.write_text("name: tiny\ninput_size: 96\ncrop: sbi\noutput: softmax\nthreshold: 0.4\n")
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "import", "onnx", str(graph), "--spec", str(spec),
                           "-o", str(folder / "out")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder / "out"


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("bundled") / "s.jsonl"
    _, errors = run_stream(RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=BUNDLED_MODELS, out=str(out),
                                     window=False))
    assert not errors
    return _scores(out)


def test_file_run_scores_every_frame_with_all_three_models(imported: Path, bundled_run: list[dict[str, Any]],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "run", "--models", str(BUNDLED_MODELS),
                           "--models", str(imported), "--out", str(out), "--no-window"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = _scores(out)
    assert len(records) == len(bundled_run) == 240
    assert all(check_record(r) == [] for r in records)
    # a file is read as fast as it is scored: each model scores each frame inside its tick
    assert all(r["models"]["tiny"] is not None and r["score_frame"] is not None for r in records)
    # ... so its score is of the record's own frame: as old as the frame (ages are rounded to 0.1 ms)
    assert all(abs(r["models_age_ms"]["tiny"] - r["latency_ms"]["total"]) <= 0.051 for r in records)
    assert sum(r["score_clip"] is not None for r in records) == 240 - 15
    assert np.ptp([r["models"]["tiny"] for r in records]) > 0  # it sees the face, not a constant
    # the bundled models' own scores are untouched by a model beside them; the fused score is not
    assert [r["score_clip"] for r in records] == [r["score_clip"] for r in bundled_run]
    assert [r["score_frame"] for r in records] == [r["score_frame"] for r in bundled_run]
    assert [r["score"] for r in records] != [r["score"] for r in bundled_run]


def test_bundled_records_carry_no_imported_models(bundled_run: list[dict[str, Any]]) -> None:
    assert all("models" not in r and check_record(r) == [] for r in bundled_run)


def test_weights_fuse_on_each_models_own_threshold() -> None:
    config = ScoringConfig(frame_threshold=0.6, clip_threshold=0.7, ema_alpha=1.0, bundled_weight=0.0)
    only_imported = TrackScorer(config).update(0.9, 0.9, [Vote(0.3, 0.4, 1.0)])
    assert only_imported.score == pytest.approx(centred(0.3, 0.4))
    both = TrackScorer(ScoringConfig(0.6, 0.7, ema_alpha=1.0)).update(None, 0.8, [Vote(0.3, 0.4, 3.0)])
    assert both.score == pytest.approx((centred(0.8, 0.7) + 3 * centred(0.3, 0.4)) / 4)
    unscored = TrackScorer(ScoringConfig(0.6, 0.7, ema_alpha=1.0)).update(None, 0.8, [Vote(None, 0.4, 3.0)])
    assert unscored.score == pytest.approx(centred(0.8, 0.7))


class _BlockedModel:
    """An imported model that cannot finish until released: stands in for SBI on a busy CPU."""

    name, threshold = "slow", 0.5

    def __init__(self) -> None:
        self.release, self.calls = threading.Event(), 0

    def crop(self, image: np.ndarray, face: FaceObs) -> np.ndarray:
        return image

    def scores(self, crops: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        assert self.release.wait(30)
        return np.full(len(crops), 0.75, np.float32)


def test_a_live_tick_never_waits_for_a_busy_model() -> None:
    model = _BlockedModel()
    stage = FaceModelStage([model])  # type: ignore[list-item]
    face = FaceObs((0.0, 0.0, 4.0, 4.0), np.zeros((468, 2), np.float32), np.zeros(5, np.float32))
    track = FaceModelScores()
    job = FaceJob(track, np.zeros((8, 8, 3), np.uint8), face, t_capture_ns=0)
    try:
        for _ in range(5):  # the model is blocked for all of these ticks, and they all return
            stage.tick([job], live=True)
        assert model.calls == 1 and "slow" not in track.latest  # one run in flight, no score yet
        model.release.set()
        for _ in range(200):
            stage.tick([job], live=True)
            if "slow" in track.latest:
                break
            threading.Event().wait(0.01)
        assert track.latest["slow"].p == pytest.approx(0.75)
        ps, ages = track.snapshot(("slow",), now_ns=5_000_000)
        assert ps == {"slow": 0.75} and ages == {"slow": 5.0}
    finally:
        model.release.set()
        stage.close()


def test_paced_run_keeps_every_frame_and_reports_each_scores_age(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "paced.jsonl"
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=BUNDLED_MODELS, detectors=(imported,), out=str(out),
                    window=False, realtime=True, model_weights={"tiny": 2.0})
    summary, errors = run_stream(cfg)
    assert not errors
    records = _scores(out)
    assert len(records) + summary.sources[str(SAMPLE_CLIP)].dropped == 240
    scored = [r for r in records if r["models"]["tiny"] is not None]
    assert len(scored) >= len(records) - 5  # after the lane's first run, every record carries a score
    assert all(r["models_age_ms"]["tiny"] >= 0 for r in scored)


def test_unknown_weight_names_and_two_model_sets_are_refused(imported: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "run", "--models", str(BUNDLED_MODELS),
                           "--models", str(BUNDLED_MODELS), "--no-window", "--duration", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "both hold model A and model B" in done.stderr
    with pytest.raises(Exception, match="neither 'bundled' nor a loaded detector"):
        run_stream(RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=BUNDLED_MODELS, detectors=(imported,),
                             window=False, model_weights={"sbi": 1.0}, duration_s=1))


def test_calibrate_refits_an_imported_detector_on_real_and_fake_videos(imported: Path, tmp_path: Path) -> None:
    import cv2

    from dfstream.stream.ort_sessions import read_metadata
    from tests.conftest import read_frames, write_video

    frames = read_frames(SAMPLE_CLIP, limit=90)
    (tmp_path / "clips" / "real").mkdir(parents=True)
    (tmp_path / "clips" / "fake").mkdir()
    write_video(tmp_path / "clips" / "real" / "a.mp4", frames[:45])
    write_video(tmp_path / "clips" / "real" / "b.mp4", frames[45:])
    # a crude manipulation the tiny model can tell apart: the whole picture's colours swapped
    write_video(tmp_path / "clips" / "fake" / "a.mp4", [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames[:45]])
    before = read_metadata(imported / "tiny.onnx")
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "calibrate", str(imported), "--videos",
                           str(tmp_path / "clips"), "--frames-per-video", "8", "--max-fpr", "0.2", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    samples = int(done.stdout.split("tiny.onnx: ")[1].split(" validation samples")[0])
    assert 16 <= samples <= 24  # 8 frames of each of 3 clips, those with a face
    after = read_metadata(tmp_path / "out" / "tiny.onnx")
    assert after.calibration != before.calibration and after.threshold != before.threshold
    assert after.name == "tiny" and after.crop == before.crop
    flagged = done.stdout.split("genuine flagged")[1].split("->")[1].split("%")[0]
    assert float(flagged) <= 20.0

    # the genuine clips once more as a browser call delivers them (VP8), beside the files
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "calibrate", str(imported), "--videos",
                           str(tmp_path / "clips"), "--frames-per-video", "8", "--max-fpr", "0.2", "--through",
                           "vp8", "--out", str(tmp_path / "out-vp8")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with_calls = int(done.stdout.split("tiny.onnx: ")[1].split(" validation samples")[0])
    assert with_calls - samples == 16  # 8 more frames of each of the 2 real clips

    (tmp_path / "clips" / "fake" / "a.mp4").unlink()
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "calibrate", str(imported), "--videos",
                           str(tmp_path / "clips")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "fake: no videos" in done.stderr


class _Records:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def write(self, frame: Any, records: Any, header: str) -> None:
        self.records += list(records)

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None


def test_a_paced_source_never_waits_for_a_blocked_model_even_without_model_as_lane() -> None:
    """--no-frame-lane puts model A back in the tick; the imported models stay on their lanes."""
    from dfstream.stream.model_set import ModelSet
    from dfstream.stream.pipeline import Pipeline
    from dfstream.stream.sinks import SinkSet
    from dfstream.stream.sources import SourceOptions, open_source

    model = _BlockedModel()
    stage = FaceModelStage([model])  # type: ignore[list-item]
    sink = _Records()
    source = open_source(str(SAMPLE_CLIP), SourceOptions(realtime=True))
    pipeline = Pipeline(ModelSet.load(BUNDLED_MODELS, "cpu"), [source], SinkSet([sink]),
                        pipeline_options(frame_lane=False), face_models=stage)
    unblock = threading.Timer(3.5, model.release.set)  # after the run's 3 s: the lane's close then returns
    unblock.start()
    try:
        pipeline.run(duration_s=3.0)
    finally:
        unblock.cancel()
        model.release.set()
    assert model.calls == 1  # its one run was still in flight when the run ended
    assert len(sink.records) >= 30 and all(r.models[0]["slow"] is None for r in sink.records)


def test_imported_detectors_on_lanes_take_one_thread_below_the_frames(imported: Path) -> None:
    """Like model A on its lane: one intra-op thread per session, and the lane's thread yields the cores."""
    import os

    from dfstream.stream.face_models import _Lane, face_model_files, load_face_models
    from dfstream.stream.frame_lane import LANE_NICE
    from dfstream.stream.ort_sessions import LANE_INTRA_THREADS

    files = face_model_files((imported,))
    on_lanes = load_face_models(files, "cpu", on_lanes=True)[0]
    in_tick = load_face_models(files, "cpu")[0]
    assert on_lanes.model.session.get_session_options().intra_op_num_threads == LANE_INTRA_THREADS
    assert in_tick.model.session.get_session_options().intra_op_num_threads == 0
    lane = _Lane(on_lanes)
    try:
        seen = lane._pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result(10)
    finally:
        lane.close()
    assert seen == min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + LANE_NICE)
