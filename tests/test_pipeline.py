"""The streaming detector end to end: real MediaPipe on real faces, real ONNX Runtime, real files."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import CLIP_LEN, FaceObs, Frame
from dfstream.stream.crops import InputSpec, crop_face, to_model_input
from dfstream.stream.faces import FaceStage
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import ModelSet
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import check_record
from dfstream.stream.run_config import RunConfig
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import open_source
from tests.conftest import pipeline_options, read_frames, write_video


def _records(path: Path, kind: str = "score") -> list[dict]:
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["type"] == kind]


@pytest.fixture(scope="module")
def sample_run(stream_models: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    out = tmp_path_factory.mktemp("run")
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(out / "s.jsonl"),
                    video=out / "s.mp4")
    summary, errors = run_stream(cfg)
    assert errors == []
    return out / "s.jsonl", out / "s.mp4", summary.to_dict()


def test_file_run_gives_schema_valid_records_for_every_frame(sample_run: tuple[Path, Path, dict]) -> None:
    jsonl, _, summary = sample_run
    records = _records(jsonl)
    problems = {i: check_record(r) for i, r in enumerate(records) if check_record(r)}
    assert not problems
    assert [r["frame_id"] for r in records] == list(range(240)), "one face in every frame of the sample"
    assert {r["track_id"] for r in records} == {1}
    assert all(r["score_clip"] is None for r in records[: CLIP_LEN - 1])
    assert all(r["score_clip"] is not None for r in records[CLIP_LEN - 1 :])
    assert summary["frames"] == 240 and summary["sources"][str(SAMPLE_CLIP)]["dropped"] == 0
    assert summary["tracks"][0]["frames"] == 240


def test_annotated_video_plays_with_every_frame(sample_run: tuple[Path, Path, dict]) -> None:
    _, video, _ = sample_run
    frames = read_frames(video)
    assert len(frames) == 240 and frames[0].shape == (480, 640, 3)


def test_incremental_clip_score_equals_the_full_clip_model(stream_models: Path) -> None:
    """Cached encoder rows + head on the 17th frame == clip_full on the same 16 crops and lmk5 values."""
    models = ModelSet.load(stream_models, "cpu")
    source = open_source(str(SAMPLE_CLIP))
    pipeline = Pipeline(models, [source], SinkSet([]), pipeline_options())
    stream = pipeline.streams[0]
    frames = read_frames(SAMPLE_CLIP, CLIP_LEN + 1)
    recorder = stream.faces = _Recording(stream.faces)  # type: ignore[assignment]
    crops, lmks, scores = [], [], []
    for i, image in enumerate(frames):
        (_, records), = pipeline.process([(stream, Frame(source.name, i, 1.0, 0, image))])
        face = recorder.last[0]
        crops.append(crop_face(image, face.bbox, models.clip_input.size))
        lmks.append(face.lmk5)
        scores.append(records[0].score_clip)
    full = ort.InferenceSession(str(stream_models / "clip_full.onnx"), providers=["CPUExecutionProvider"])
    spec = InputSpec.of(models.encoder.metadata)
    for end in (CLIP_LEN, CLIP_LEN + 1):
        clip = to_model_input(crops[end - CLIP_LEN : end], spec)[None]
        lmk = np.stack(lmks[end - CLIP_LEN : end])[None].astype(np.float32)
        expected = float(full.run(None, {"frames": clip, "lmk5": lmk})[0].reshape(-1)[0])
        assert scores[end - 1] == pytest.approx(expected, abs=1e-4)
    source.close()


class _Recording:
    """Wraps the pipeline's face stage and keeps what it returned, so the test uses the same faces."""

    def __init__(self, inner: FaceStage) -> None:
        self.inner = inner
        self.last: list[FaceObs] = []

    def __call__(self, image: np.ndarray) -> list[FaceObs]:
        self.last = self.inner(image)
        return self.last

    def close(self) -> None:
        self.inner.close()


def test_two_faces_keep_two_stable_track_ids(stream_models: Path, tmp_path: Path) -> None:
    frames = read_frames(SAMPLE_CLIP, 60)
    two = [np.hstack([f, cv2.flip(frames[-1 - i], 1)]) for i, f in enumerate(frames)]
    clip = write_video(tmp_path / "two.mp4", two)
    cfg = RunConfig(sources=(str(clip),), models_dir=stream_models, out=str(tmp_path / "two.jsonl"))
    run_stream(cfg)
    records = _records(tmp_path / "two.jsonl")
    by_track: dict[int, list[dict]] = {}
    for r in records:
        by_track.setdefault(r["track_id"], []).append(r)
    assert sorted(by_track) == [1, 2]
    for rs in by_track.values():
        assert len(rs) == 60
        xs = {r["bbox"][0] < 640 for r in rs}
        assert len(xs) == 1, "a track id moved to the other face"


def test_frames_without_faces_are_counted_not_recorded(stream_models: Path, tmp_path: Path) -> None:
    blank = write_video(tmp_path / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 10)
    cfg = RunConfig(sources=(str(blank),), models_dir=stream_models, out=str(tmp_path / "b.jsonl"))
    summary, _ = run_stream(cfg)
    assert (tmp_path / "b.jsonl").read_text() == ""
    stats = summary.to_dict()["sources"][str(blank)]
    assert stats["frames"] == 10 and stats["frames_without_face"] == 10


def test_two_streams_in_one_process_are_batched_together(stream_models: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "a.mp4", read_frames(SAMPLE_CLIP, 40))
    cfg = RunConfig(sources=(str(SAMPLE_CLIP), str(clip)), models_dir=stream_models, out=str(tmp_path / "m.jsonl"),
                    duration_s=60)
    summary, errors = run_stream(cfg)
    records = _records(tmp_path / "m.jsonl")
    assert not errors and {r["source"] for r in records} == {str(SAMPLE_CLIP), str(clip)}
    assert summary.to_dict()["frames"] == 280


def test_stop_event_ends_the_run_with_everything_flushed(stream_models: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(tmp_path / "s.jsonl"),
                    video=tmp_path / "s.mp4", realtime=True)
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    summary, _ = run_stream(cfg, stop)
    d = summary.to_dict()
    assert d["stopped_by"] == "signal" and 0 < d["frames"] < 240
    assert len(_records(tmp_path / "s.jsonl")) == d["frames"]
    assert len(read_frames(tmp_path / "s.mp4")) == d["frames"]


def test_streaming_run_never_imports_torch_or_tensorflow(stream_models: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from dfstream.stream.run_config import RunConfig\n"
        "from dfstream.stream.local_run import run_stream\n"
        f"cfg = RunConfig(sources=({str(SAMPLE_CLIP)!r},), models_dir={str(stream_models)!r}, duration_s=3)\n"
        "summary, errors = run_stream(cfg)\n"
        "assert summary.to_dict()['frames'] > 0 and not errors\n"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'onnx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_overlapped_faces_lane_gives_the_same_records_in_the_same_order(stream_models: Path, tmp_path: Path) -> None:
    """--overlap finds frame N+1's faces while frame N is scored: nothing lost, reordered or changed."""
    outs = {}
    for overlap in (False, True):
        out = tmp_path / f"overlap-{overlap}.jsonl"
        cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(out), window=False,
                        overlap=overlap)
        summary, errors = run_stream(cfg)
        assert errors == [] and summary.sources[str(SAMPLE_CLIP)].frames == 240
        outs[overlap] = [json.loads(line) for line in out.read_text().splitlines()]
    keys = [[(r["frame_id"], r["track_id"]) for r in outs[o] if r["type"] == "score"] for o in (False, True)]
    assert keys[0] == keys[1] and len(keys[0]) == 240
    for a, b in zip(outs[False], outs[True], strict=True):
        assert (a.get("score_frame"), a.get("score_clip"), a.get("score")) == (
            b.get("score_frame"), b.get("score_clip"), b.get("score"))


def test_model_a_lane_yields_the_cores_to_the_frames() -> None:
    """The lane's thread runs model A at a lower priority than the thread that submits to it."""
    import os
    import threading

    from dfstream.stream.frame_lane import LANE_NICE, FrameLane
    from dfstream.stream.model_set import CropScores

    seen: list[int] = []

    def score(frame_crops: object, clip_crops: object, explain: bool) -> CropScores:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return CropScores(np.zeros(1, np.float32), None, np.zeros((0, 1), np.float32), 0.0, 0.0)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    lane = FrameLane(score)
    try:
        assert lane.submit([], [np.zeros((4, 4, 3), np.uint8)], False)
        lane._job.future.result(timeout=10)  # type: ignore[union-attr]
    finally:
        lane.close()
    assert seen == [min(19, mine + LANE_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
