"""Dataset readers for both notebook layouts: skips counted, bad folders refused, splits by video."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from dfstream.models.datasets import load_clip, scan_clip_folders, scan_image_split, split_by_video
from dfstream.stream.contract.exceptions import DatasetError, InputPathError
from tests.conftest import write_clip


def test_image_split_labels_fake_as_one(frame_dataset: Path) -> None:
    split = scan_image_split(frame_dataset, "train")
    assert len(split) == 16 and split.skipped == 0
    for path, label in zip(split.paths, split.labels, strict=True):
        assert label == (1 if path.parent.name == "fake" else 0)


def test_undecodable_images_are_skipped_and_counted(
    tmp_path: Path, frame_dataset: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(frame_dataset / "val", tmp_path / "val")
    (tmp_path / "val" / "fake" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (tmp_path / "val" / "real" / "notes.txt").write_text("ignored: not an image suffix")
    with caplog.at_level(logging.WARNING):
        split = scan_image_split(tmp_path, "val")
    assert len(split) == 16 and split.skipped == 1
    assert "skipped 1 image(s) that failed to decode" in caplog.text


def test_missing_empty_and_one_class_folders_are_refused(tmp_path: Path, frame_dataset: Path) -> None:
    with pytest.raises(InputPathError, match="'train' split folder not found"):
        scan_image_split(tmp_path, "train")
    (tmp_path / "train" / "real").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no usable samples"):
        scan_image_split(tmp_path, "train")
    shutil.copytree(frame_dataset / "train" / "real", tmp_path / "train" / "real", dirs_exist_ok=True)
    with pytest.raises(DatasetError, match="only 'real' samples \\(8\\); both real and fake are needed"):
        scan_image_split(tmp_path, "train")


def test_clip_scan_labels_and_skips(tmp_path: Path, clip_dataset: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copytree(clip_dataset, tmp_path / "clips")
    rng = np.random.default_rng(9)
    write_clip(tmp_path / "clips" / "original", "short", rng, fake=False, frames=10)  # too few frames
    write_clip(tmp_path / "clips" / "FaceSwap", "broken", rng, fake=True)
    (tmp_path / "clips" / "FaceSwap" / "broken_7.jpg").write_bytes(b"not a jpeg")
    with caplog.at_level(logging.WARNING):
        refs = scan_clip_folders(tmp_path / "clips")
    assert len(refs) == 11
    assert {r.label for r in refs if r.folder.name == "original"} == {0}
    assert {r.label for r in refs if r.folder.name != "original"} == {1}
    assert "skipped 1 video(s) without frames 0..15" in caplog.text
    assert "skipped 1 video(s) with a frame that failed to decode" in caplog.text


def test_split_is_by_video_and_deterministic(clip_dataset: Path) -> None:
    refs = scan_clip_folders(clip_dataset)
    train, val = split_by_video(refs, 0.2, 42)
    assert len(train) + len(val) == len(refs) == 11 and len(val) == 3
    assert not {(r.folder, r.video) for r in train} & {(r.folder, r.video) for r in val}
    assert split_by_video(list(reversed(refs)), 0.2, 42) == (train, val)
    assert split_by_video(refs, 0.2, 7) != (train, val)


def test_load_clip_matches_notebook_b_preprocessing(clip_dataset: Path) -> None:
    import cv2

    ref = scan_clip_folders(clip_dataset)[0]
    frames, lmks = load_clip(ref, 24)
    assert frames.shape == (16, 3, 24, 24) and lmks.shape == (16, 5)
    bgr = cv2.resize(cv2.imread(str(ref.folder / f"{ref.video}_3.jpg")), (24, 24))
    np.testing.assert_allclose(frames[3], bgr.transpose(2, 0, 1) / 255.0, atol=1e-6)  # BGR, 0..1
    assert 0.0 <= frames.min() and frames.max() <= 1.0
