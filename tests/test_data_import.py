"""``dfstream data import``: miniature trees in each data set's layout, made from the sample clip's
genuine and self-blended stretches, imported end to end through real MediaPipe and real video files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.models.configs import ImportConfig
from dfstream.models.data import footage_import, footage_video
from dfstream.models.data.footage_import import LOG_FILE, PLAN_FILE, run_import
from dfstream.models.data.footage_video import clip_starts, frame_positions, video_of_clip
from dfstream.models.metrics import person_of
from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import CLIP_CROP, CLIP_LEN, FRAME_CROP
from dfstream.stream.crops import crop_face
from dfstream.stream.faces import FaceStage
from tests.conftest import read_frames, write_video

FRAMES = 2
CLIPS = 1
LENGTH = 40


@pytest.fixture(scope="module")
def pieces() -> dict[str, list[np.ndarray]]:
    """Short stretches of the sample clip: genuine ones (before 3.0 s and after 5.5 s) and self-blended ones."""
    frames = read_frames(SAMPLE_CLIP)
    flip = [cv2.flip(f, 1) for f in frames]
    return {
        "real0": frames[0:LENGTH], "real1": flip[20 : 20 + LENGTH], "real2": frames[175 : 175 + LENGTH],
        "real3": flip[190 : 190 + LENGTH], "fake0": frames[100 : 100 + LENGTH], "fake1": flip[115 : 115 + LENGTH],
    }


def put(path: Path, frames: list[np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, frames)


def cfg(kind: str, root: Path, out: Path, **more: object) -> ImportConfig:
    return ImportConfig.model_validate(
        {"kind": kind, "root": root, "out": out, "frames_per_video": FRAMES, "clips_per_video": CLIPS} | more)


def log_of(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]


def files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for sub in ("frames", "clips") for p in (out / sub).rglob("*") if p.is_file()}


def test_own_folders_both_layouts_with_bad_videos_counted(tmp_path: Path, pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "mine"
    for name in ("real0", "real1", "real2"):
        put(root / "real" / f"{name}.mp4", pieces[name])
    for name in ("fake0", "fake1"):
        put(root / "fake" / "cam" / f"{name}.mp4", pieces[name])
    put(root / "real" / "empty-room.mp4", [np.full((480, 640, 3), 80, np.uint8)] * LENGTH)
    (root / "real" / "broken.mp4").write_bytes(b"not a video")
    half = [cv2.copyMakeBorder(cv2.resize(f, (320, 240)), 120, 120, 160, 160, cv2.BORDER_CONSTANT)
            for f in pieces["real3"]]  # faces about 85 px high: below --min-face 120
    put(root / "real" / "far.mp4", half)
    out = tmp_path / "out"
    summary = run_import(cfg("folders", root, out, min_face=120), progress=False)

    statuses = Counter(str(r["status"]) for r in log_of(out))
    assert statuses == {"done": 5, "unreadable": 1, "no face": 1, "too small": 1}
    counted = Counter()
    for split in summary["splits"].values():
        for c in split.values():
            counted.update({k: v for k, v in c.items() if k.startswith("skipped")})
    assert counted == {"skipped: unreadable": 1, "skipped: no face": 1, "skipped: too small": 1}
    # every usable video wrote FRAMES frames to model A and CLIPS clips of 16 crops + 16 landmark files to model B
    jpgs = sorted((out / "frames").rglob("*.jpg"))
    assert len(jpgs) == 5 * FRAMES
    assert {p.parent.name for p in jpgs} == {"real", "fake"}
    assert all(p.name.split("__")[0] in ("original", "fake") for p in jpgs)
    clip_jpgs = sorted((out / "clips").rglob("*.jpg"))
    assert len(clip_jpgs) == 5 * CLIPS * CLIP_LEN == len(list((out / "clips").rglob("*.npy")))
    assert {p.parent.name for p in clip_jpgs} == {"original", "fake"}
    # the split is by video: each video's files sit in one split
    split_of: dict[str, set[str]] = {}
    for p in jpgs + clip_jpgs:
        video = video_of_clip(p.stem.rsplit("_", 1)[0]).split("-f000-")[1]
        split_of.setdefault(video, set()).add(p.parts[-3])
    assert all(len(s) == 1 for s in split_of.values()) and len(split_of) == 5
    assert not (out / footage_video.STAGING).exists()


def test_crops_and_landmarks_are_the_streams(tmp_path: Path, pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "one"
    video = put(root / "real" / "a.mp4", pieces["real0"])
    out = tmp_path / "out"
    run_import(cfg("folders", root, out), progress=False)
    decoded = read_frames(video)
    # model B: the stream's video-mode landmarks over the same 16 frames in a row, and its crops
    start = clip_starts(len(decoded), CLIPS)[0]
    stage = FaceStage(max_faces=4, video=True)
    try:
        faces = [stage(decoded[start + i])[0] for i in range(CLIP_LEN)]
    finally:
        stage.close()
    folder = next((out / "clips").glob("*/original"))
    name = next(folder.glob("*_0.jpg")).name.removesuffix("_0.jpg")
    for i, face in enumerate(faces):
        assert np.array_equal(np.load(folder / f"{name}_{i}.npy"), face.lmk5.astype(np.float32))
        stored = cv2.imread(str(folder / f"{name}_{i}.jpg")).astype(np.float32)
        assert np.abs(stored - crop_face(decoded[start + i], face.bbox, CLIP_CROP)).mean() < 2.0  # JPEG at 95
    # model A: single frames, landmarked one by one
    stage = FaceStage(max_faces=4, video=False)
    try:
        for i in frame_positions(len(decoded), FRAMES):
            path = next((out / "frames").glob(f"*/real/original__*_{i}.jpg"))
            expected = crop_face(decoded[i], stage(decoded[i])[0].bbox, FRAME_CROP)
            assert np.abs(cv2.imread(str(path)).astype(np.float32) - expected).mean() < 2.0
    finally:
        stage.close()


def faceforensics_tree(root: Path, pieces: dict[str, list[np.ndarray]], official: bool) -> None:
    originals = root / "original_sequences" / "youtube" / "c23" / "videos"
    for i, name in enumerate(("real0", "real1", "real2", "real3")):
        put(originals / f"{i:03d}.mp4", pieces[name])
    put(root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos" / "000_001.mp4", pieces["fake0"])
    put(root / "manipulated_sequences" / "Face2Face" / "c23" / "videos" / "002_003.mp4", pieces["fake1"])
    put(root / "manipulated_sequences" / "Deepfakes" / "c40" / "videos" / "002_003.mp4", pieces["fake1"])
    if official:
        (root / "splits").mkdir()
        for split, pairs in (("train", [["000", "001"]]), ("val", []), ("test", [["002", "003"]])):
            (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))


def test_faceforensics_official_pairs_stay_together(tmp_path: Path, pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "ff"
    faceforensics_tree(root, pieces, official=True)
    out = tmp_path / "out"
    summary = run_import(cfg("faceforensics", root, out), progress=False)
    assert "official" in summary["split_by"]
    assert set(summary["splits"]["train"]) == {"original", "Deepfakes"}
    assert set(summary["splits"]["test"]) == {"original", "Face2Face"}  # c40's Deepfakes are not c23
    assert summary["splits"]["train"]["original"]["videos"] == summary["splits"]["test"]["original"]["videos"] == 2
    # per-method folders for model B, and each pair's people name one group for the resampled interval
    assert {p.name for p in (out / "clips" / "test").iterdir()} == {"original", "Face2Face"}
    people = {person_of(p.name) for p in (out / "frames" / "test").rglob("*.jpg")}
    assert people == {"002.003"}


def test_faceforensics_without_splits_keeps_a_pair_in_one_split(tmp_path: Path,
                                                                pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "ff"
    faceforensics_tree(root, pieces, official=False)
    plan = footage_import.plan_splits(footage_import.discover(cfg("faceforensics", root, tmp_path / "o",
                                                                  methods=("Deepfakes",))), seed=0)
    split_of = {v.key: s for v, s in plan.videos}
    assert split_of["original.000"] == split_of["original.001"] == split_of["Deepfakes.000-001"]
    assert "Face2Face.002-003" not in split_of


def test_celebdf_test_list_and_swaps_across_splits(tmp_path: Path, pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "celeb"
    for i, name in enumerate(("real0", "real1", "real2", "real3")):
        put(root / "Celeb-real" / f"id{i}_0000.mp4", pieces[name])
    put(root / "YouTube-real" / "00000.mp4", pieces["real0"])
    for target, source in ((0, 1), (1, 0), (2, 3), (3, 2), (0, 2), (2, 0)):
        put(root / "Celeb-synthesis" / f"id{target}_id{source}_0000.mp4", pieces["fake0"])
    (root / "List_of_testing_videos.txt").write_text("1 YouTube-real/00000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n")
    plan = footage_import.plan_splits(footage_import.discover(cfg("celebdf", root, tmp_path / "o")), seed=0)
    split_of = {v.key: s for v, s in plan.videos}
    assert split_of["YouTube-real.00000"] == split_of["Celeb-synthesis.id0-id1-0000"] == "test"
    assert "test" not in {s for k, s in split_of.items() if k not in ("YouTube-real.00000",
                                                                       "Celeb-synthesis.id0-id1-0000")}
    group_split = {v.group: s for v, s in plan.videos if v.key.startswith("Celeb-real")}
    for key, split in split_of.items():  # a kept swap never shows a person of another split
        if key.startswith("Celeb-synthesis") and split != "test":
            target, source = key.split(".")[1].split("-")[:2]
            assert group_split[target] == group_split[source] == split
    expected_cut = sum(1 for t, s in ((1, 0), (2, 3), (3, 2), (0, 2), (2, 0)) if group_split[f"id{t}"] !=
                       group_split[f"id{s}"])
    assert plan.skipped.get("shows a person of another split", 0) == expected_cut
    assert plan.shared_with_test == 1  # id0 has a video in the test list and others outside it


def test_dfdc_parts_fakes_follow_their_original(tmp_path: Path, pieces: dict[str, list[np.ndarray]]) -> None:
    root = tmp_path / "dfdc"
    meta = {}
    for i, name in enumerate(("real0", "real1", "real2", "real3")):
        put(root / "part_0" / f"r{i}.mp4", pieces[name])
        meta[f"r{i}.mp4"] = {"label": "REAL", "split": "train"}
        put(root / "part_0" / f"f{i}.mp4", pieces["fake0" if i % 2 else "fake1"])
        meta[f"f{i}.mp4"] = {"label": "FAKE", "split": "train", "original": f"r{i}.mp4"}
    meta["gone.mp4"] = {"label": "FAKE", "original": "r0.mp4"}
    (root / "part_0" / "metadata.json").write_text(json.dumps(meta))
    put(root / "part_1" / "x.mp4", pieces["real0"])  # a part without its metadata.json
    plan = footage_import.plan_splits(footage_import.discover(cfg("dfdc", root, tmp_path / "o")), seed=0)
    split_of = {v.key: s for v, s in plan.videos}
    assert len(split_of) == 8
    assert all(split_of[f"f{i}"] == split_of[f"r{i}"] for i in range(4))
    assert plan.skipped == {"no metadata.json": 1, "listed, not on disk": 1}
    assert {v.method for v, _ in plan.videos} == {"original", "dfdc"}


def test_interrupted_import_goes_on_without_duplicates(tmp_path: Path, pieces: dict[str, list[np.ndarray]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mine"
    for name in ("real0", "real1", "real2", "fake0", "fake1"):
        put(root / ("fake" if name.startswith("fake") else "real") / f"{name}.mp4", pieces[name])
    whole = tmp_path / "whole"
    run_import(cfg("folders", root, whole), progress=False)

    out = tmp_path / "out"
    real_import = footage_import.import_video
    calls = 0

    def stop_at_third(task: footage_video.VideoTask) -> footage_video.VideoResult:
        nonlocal calls
        calls += 1
        if calls == 3:  # half of this video's files are in the staging folder when the user stops
            (task.out / footage_video.STAGING / task.video.key / "clips").mkdir(parents=True)
            raise KeyboardInterrupt
        return real_import(task)

    monkeypatch.setattr(footage_import, "import_video", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        run_import(cfg("folders", root, out), progress=False)
    monkeypatch.undo()
    assert len(log_of(out)) == 2
    with (out / LOG_FILE).open("a") as f:  # and the log's last line was cut mid-write
        f.write('{"key": "real.re')
    summary = run_import(cfg("folders", root, out, workers=2), progress=False)
    keys = [str(r["key"]) for r in log_of(out)]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 5
    assert files(out) == files(whole)
    assert sum(c.get("imported", 0) for s in summary["splits"].values() for c in s.values()) == 5
    assert not (out / footage_video.STAGING).exists()


def test_bad_roots_and_changed_options_are_one_line_errors(tmp_path: Path,
                                                           pieces: dict[str, list[np.ndarray]]) -> None:
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    for kind, expected in (("faceforensics", "original_sequences/youtube/c23/videos"),
                           ("celebdf", "Celeb-real"), ("dfdc", "metadata.json"), ("folders", "real/ and fake/")):
        result = runner.invoke(app, ["data", "import", kind, str(empty), "-o", str(tmp_path / kind)])
        assert result.exit_code == 2, result.output
        assert expected in result.output and len(result.output.strip().splitlines()) == 1
    root = tmp_path / "mine"
    put(root / "real" / "a.mp4", pieces["real0"])
    put(root / "fake" / "b.mp4", pieces["fake0"])
    out = tmp_path / "out"
    first = runner.invoke(app, ["data", "import", "folders", str(root), "-o", str(out), "--frames-per-video", "1",
                                "--clips-per-video", "1", "--limit", "1", "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "not yet 1" in first.output
    plan = json.loads((out / PLAN_FILE).read_text())
    changed = runner.invoke(app, ["data", "import", "folders", str(root), "-o", str(out), "--frames-per-video", "3"])
    assert changed.exit_code == 2 and "frames_per_video 1 → 3" in changed.output
    assert json.loads((out / PLAN_FILE).read_text()) == plan
    shutil.rmtree(out)
    nothing = runner.invoke(app, ["data", "import", "folders", str(root), "-o", str(out), "--frames-per-video", "0",
                                  "--clips-per-video", "0"])
    assert nothing.exit_code == 2 and "nothing to import" in nothing.output
