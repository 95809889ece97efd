"""The deadline scheduler: k rises when ticks overrun the frame budget, falls when they fit again,
stays 1 without a deadline and fixed with --stride; in a real paced run it shows in the records.
The frame lane takes model A off the frames' path for paced sources."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import Frame
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import CropScores, ModelSet
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import ScoreRecord
from dfstream.stream.run_config import RunConfig
from dfstream.stream.scheduler import MAX_EVERY, DeadlineScheduler, runs_frame_model
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import FileSource
from tests.conftest import pipeline_options, read_frames, write_video

BUDGET = 1 / 30


def test_k_rises_under_load_settles_and_falls_back() -> None:
    s = DeadlineScheduler()
    ks = [s.update(0.060, BUDGET) for _ in range(200)]  # ticks twice the budget
    assert ks[0] == 1 and max(ks) == MAX_EVERY and ks == sorted(ks)
    changes = [i for i in range(1, len(ks)) if ks[i] != ks[i - 1]]
    assert all(b - a >= s.settle_ticks for a, b in itertools.pairwise(changes))  # no flapping
    relieved = [s.update(0.010, BUDGET) for _ in range(200)]  # ticks well inside the budget
    assert relieved[-1] == 1


def test_no_deadline_means_every_frame_and_stride_fixes_k() -> None:
    s = DeadlineScheduler()
    for _ in range(100):
        s.update(0.060, BUDGET)
    assert s.update(0.060, None) == 1  # a file read as fast as scored
    fixed = DeadlineScheduler(fixed=3)
    assert {fixed.update(t, BUDGET) for t in (0.001, 0.5)} == {3}
    turns = [runs_frame_model(n, phase=1, every=fixed.every) for n in range(6)]
    assert turns == [True, False, True, False, False, True]  # the first frame, then every 3rd, phased


def test_a_paced_source_too_fast_to_keep_up_gets_a_larger_k(stream_models: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "fast.mp4", read_frames(SAMPLE_CLIP, 240), fps=240)  # a 4 ms frame budget
    out = tmp_path / "s.jsonl"
    cfg = RunConfig(sources=(str(clip),), models_dir=stream_models, out=str(out), window=False, realtime=True)
    run_stream(cfg)
    records = [json.loads(x) for x in out.read_text().splitlines() if '"type":"score"' in x]
    ks = [r["frame_model_every"] for r in records]
    assert ks[0] == 1 and max(ks) > 1
    # the same clip read as fast as scored keeps k = 1 throughout
    cfg_file = cfg.model_copy(update={"realtime": False, "out": str(tmp_path / "f.jsonl")})
    run_stream(cfg_file)
    assert {json.loads(x)["frame_model_every"] for x in (tmp_path / "f.jsonl").read_text().splitlines()
            if '"type":"score"' in x} == {1}


class _BlockedFrameModel:
    """The real (tiny) models, with model A held until the test releases it."""

    def __init__(self, models: ModelSet) -> None:
        self._models = models
        self.frame_input, self.clip_input = models.frame_input, models.clip_input
        self.provider, self.explains, self.thresholds = models.provider, models.explains, models.thresholds
        self.frame_runs = 0
        self.calls = 0
        """Every call, model A's or the encoder's: each tick makes at least one."""
        self.entered, self.release = threading.Event(), threading.Event()

    def score_crops(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
                    explain: bool = False) -> CropScores:
        self.calls += 1
        if frame_crops:
            self.frame_runs += 1
            self.entered.set()
            self.release.wait(60)
        return self._models.score_crops(frame_crops, clip_crops, explain)

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self._models.clip_scores(clips)


class _Paced:
    """A paced run of the sample clip in its own thread, its records collected as the sinks get them."""

    def __init__(self, models: _BlockedFrameModel, frame_lane: bool) -> None:
        self.records: list[ScoreRecord] = []
        self.stop = threading.Event()
        records = self.records

        class Collect:
            name = "collect"

            def write(self, frame: Frame, recs: list[ScoreRecord], header: str) -> None:
                records.extend(recs)

            def event(self, data: dict[str, Any]) -> None:
                return None

            def close(self) -> None:
                return None

        source = FileSource(SAMPLE_CLIP, realtime=True, loop=True)
        pipeline = Pipeline(models, [source], SinkSet([Collect()]), pipeline_options(stride=1, frame_lane=frame_lane))
        self.thread = threading.Thread(target=pipeline.run, kwargs={"stop": self.stop}, daemon=True)
        self.thread.start()

    def wait_for(self, condition: Any, what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
            time.sleep(0.02)

    def close(self, models: _BlockedFrameModel) -> None:
        models.release.set()
        self.stop.set()
        self.thread.join(30)


def test_on_the_lane_frames_keep_coming_while_model_a_is_held(stream_models: Path) -> None:
    """The mechanism, not a timing margin: with model A blocked, records keep arriving on the lane
    (and one model A run is in flight, not a pile); its score arrives once it is released."""
    models = _BlockedFrameModel(ModelSet.load(stream_models, "cpu"))
    run = _Paced(models, frame_lane=True)
    try:
        run.wait_for(models.entered.is_set, "model A started")
        held_at = len(run.records)
        run.wait_for(lambda: len(run.records) >= held_at + 20, "20 more records while model A is held")
        assert models.frame_runs == 1 and all(r.score_frame is None for r in run.records)
        assert models.calls > 20, "the encoder kept running on the frames' thread"
        models.release.set()
        run.wait_for(lambda: any(r.score_frame is not None for r in run.records), "model A's score in a record")
    finally:
        run.close(models)


def test_inside_the_tick_a_held_model_a_holds_every_frame(stream_models: Path) -> None:
    """--no-frame-lane: while model A is blocked nothing is scored; once released, scoring goes on."""
    models = _BlockedFrameModel(ModelSet.load(stream_models, "cpu"))
    run = _Paced(models, frame_lane=False)
    try:
        run.wait_for(models.entered.is_set, "model A started")
        calls = models.calls
        time.sleep(1.0)  # thirty frame periods: a lane would have run the encoder on some by now
        assert models.calls == calls, "no tick went on while model A held this one"
        models.release.set()
        run.wait_for(lambda: models.calls > calls and any(r.score_frame is not None for r in run.records),
                     "ticks and scores once model A is released")
    finally:
        run.close(models)
