"""The deadline scheduler: k rises when ticks overrun the frame budget, falls when they fit again,
stays 1 without a deadline and fixed with --stride; in a real paced run it shows in the records.
The frame lane takes model A off the frames' path for paced sources."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dfstream.config import RunConfig
from dfstream.paths import SAMPLE_CLIP
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import CropScores, ModelSet
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.records import ScoreRecord
from dfstream.stream.scheduler import MAX_EVERY, DeadlineScheduler, runs_frame_model
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import FileSource
from dfstream.stream.types import Frame
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


class _SlowFrameModel:
    """The real (tiny) models, with model A made slower than a frame's budget."""

    def __init__(self, models: ModelSet, delay_s: float) -> None:
        self._models, self._delay = models, delay_s
        self.frame_input, self.clip_input = models.frame_input, models.clip_input
        self.provider, self.explains, self.thresholds = models.provider, models.explains, models.thresholds
        self.frame_runs = 0

    def score_crops(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
                    explain: bool = False) -> CropScores:
        if frame_crops:
            self.frame_runs += 1
            time.sleep(self._delay)
        return self._models.score_crops(frame_crops, clip_crops, explain)

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return self._models.clip_scores(clips)


def _paced_records(models: _SlowFrameModel, frame_lane: bool, seconds: float) -> list[ScoreRecord]:
    records: list[ScoreRecord] = []

    class Collect:
        name = "collect"

        def write(self, frame: Frame, recs: list[ScoreRecord], header: str) -> None:
            records.extend(recs)

        def event(self, data: dict[str, Any]) -> None:
            return None

        def close(self) -> None:
            return None

    source = FileSource(SAMPLE_CLIP, realtime=True)
    options = pipeline_options(stride=1, frame_lane=frame_lane)
    Pipeline(models, [source], SinkSet([Collect()]), options).run(duration_s=seconds)
    return records


def test_the_frame_lane_keeps_a_slow_model_a_off_every_frame(stream_models: Path) -> None:
    """Model A at 150 ms (4.5 frame budgets): inside the tick it delays the frames it runs on; on the
    lane no frame waits for it, and its scores still reach the records, a few frames late."""
    models = ModelSet.load(stream_models, "cpu")
    inline = _paced_records(_SlowFrameModel(models, 0.15), frame_lane=False, seconds=3)
    slow = _SlowFrameModel(models, 0.15)
    lane = _paced_records(slow, frame_lane=True, seconds=3)
    inline_total = sorted(r.latency_ms["total"] for r in inline)
    lane_total = sorted(r.latency_ms["total"] for r in lane)
    assert inline_total[len(inline_total) // 2] >= 150, "inline, every frame waits for model A (stride 1)"
    assert lane_total[len(lane_total) // 2] < 100, "on the lane, frames do not wait for model A"
    assert len(lane) > 1.5 * len(inline), "more frames scored in the same time"
    assert slow.frame_runs >= 5, "model A kept running on the lane"
    scored = [r.score_frame for r in lane]
    assert scored[0] is None and scored[-1] is not None, "its scores arrive later and are kept"
    assert len({s for s in scored if s is not None}) > 1, "and are refreshed as it runs"
