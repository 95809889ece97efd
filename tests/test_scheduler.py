"""The deadline scheduler: k rises when ticks overrun the frame budget, falls when they fit again,
stays 1 without a deadline and fixed with --stride; in a real paced run it shows in the records."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from dfstream.config import RunConfig
from dfstream.paths import SAMPLE_CLIP
from dfstream.stream.run import run_stream
from dfstream.stream.scheduler import MAX_EVERY, DeadlineScheduler, runs_frame_model
from tests.conftest import read_frames, write_video

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
