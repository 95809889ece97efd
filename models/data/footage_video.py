"""One video of a data set into both notebooks' layouts, cropped and landmarked by the stream's own code.

Model A gets single frames spread evenly over the video, landmarked one by one; model B gets clips
of 16 frames in a row, landmarked in video mode and linked by the stream's tracker, as the stream
sees a camera. Files go to a staging folder first and are moved into place at the end, so an
interrupted video leaves nothing half-written among the finished ones.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from dfstream.models.data.footage_layouts import REAL_METHOD, Video
from dfstream.models.data.splits import Split
from dfstream.models.metrics import KIND_SEPARATOR
from dfstream.stream.contract.types import CLIP_CROP, CLIP_LEN, FRAME_CROP, FaceObs
from dfstream.stream.crops import crop_face
from dfstream.stream.faces import FaceStage
from dfstream.stream.tracking import Tracker

Status = Literal["done", "unreadable", "no face", "too small", "too short"]
STAGING = ".partial"
CLIP_OF_VIDEO = re.compile(r"\.c\d{2,}$")
"""Model B's clips of one video (and face) are ``{stem}.c00``, ``{stem}.c01``…: cut this to get the video."""
JPEG_QUALITY = 95


@dataclass(frozen=True)
class VideoTask:
    video: Video
    split: Split
    out: Path
    frames_per_video: int
    clips_per_video: int
    max_faces: int
    min_face: int
    size_a: int = FRAME_CROP
    size_b: int = CLIP_CROP


@dataclass(frozen=True)
class VideoResult:
    key: str
    split: Split
    method: str
    status: Status
    frames: int = 0
    """Model A images written."""
    clips: int = 0
    """Model B clips written (16 crops + 16 landmark files each)."""
    faces: int = 0
    """Most faces written from one sampled frame or clip."""
    missed: int = 0
    """Sampled frames or clips that gave no usable face."""


def frame_positions(n: int, k: int) -> list[int]:
    """``k`` frame indices spread evenly over ``n`` frames (centres of ``k`` equal parts)."""
    if n <= 0 or k <= 0:
        return []
    return sorted({min(n - 1, int((i + 0.5) * n / k)) for i in range(k)})


def clip_starts(n: int, k: int, clip_len: int = CLIP_LEN) -> list[int]:
    """First frames of ``k`` clips of ``clip_len`` spread evenly over ``n`` frames (none if too short)."""
    if n < clip_len or k <= 0:
        return []
    return sorted({round(float(s)) for s in np.linspace(0, n - clip_len, k + 2)[1:-1]})


def frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            return 0
        n = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if n > 0:
            return n
        while capture.grab():
            n += 1
        return n
    finally:
        capture.release()


def read_frames(path: Path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The wanted frames (BGR), decoding the video once in order; a container that overstates its length
    simply returns fewer."""
    got: dict[int, np.ndarray] = {}
    if not wanted:
        return got
    last = max(wanted)
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        for i in range(last + 1):
            if not capture.grab():
                break
            if i in wanted:
                ok, frame = capture.retrieve()
                if ok and frame is not None:
                    got[i] = frame
    finally:
        capture.release()
    return got


def stem(video: Video, face: int) -> str:
    """``{group}-f{face:03d}-{key}``: the metrics read the group as the person (dots only in it, so its
    ``-fNNN-`` is the first)."""
    return f"{video.group.replace('-', '.')}-f{face:03d}-{video.key}"


def clip_name(video_stem: str, j: int) -> str:
    return f"{video_stem}.c{j:02d}"


def video_of_clip(name: str) -> str:
    return CLIP_OF_VIDEO.sub("", name)


class _Counts:
    def __init__(self) -> None:
        self.too_small = False
        self.missed = self.faces = 0

    def keep(self, faces: list[FaceObs], min_face: int, max_faces: int) -> list[FaceObs]:
        big = [f for f in faces if max(f.bbox[2], f.bbox[3]) >= min_face]
        if faces and not big:
            self.too_small = True
        if not big:
            self.missed += 1
        self.faces = max(self.faces, min(len(big), max_faces))
        return big[:max_faces]


def _write_jpg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"cannot write {path}")


def _frames(task: VideoTask, frames: dict[int, np.ndarray], staging: Path, counts: _Counts) -> int:
    video = task.video
    folder = staging / "frames" / task.split / ("real" if video.method == REAL_METHOD else "fake")
    written = 0
    stage = FaceStage(max_faces=max(task.max_faces, 4), video=False)
    try:
        for i in sorted(frames):
            for k, face in enumerate(counts.keep(stage(frames[i]), task.min_face, task.max_faces)):
                name = f"{video.method}{KIND_SEPARATOR}{stem(video, k)}_{i}.jpg"
                _write_jpg(folder / name, crop_face(frames[i], face.bbox, task.size_a))
                written += 1
    finally:
        stage.close()
    return written


def _tracked(frames: list[np.ndarray], max_faces: int) -> list[list[FaceObs]]:
    """Per track seen in every frame of the clip, its face in each frame; largest tracks first."""
    stage = FaceStage(max_faces=max(max_faces, 4), video=True)
    tracker = Tracker()
    seen: dict[int, list[FaceObs]] = {}
    try:
        for frame in frames:
            pairs, _ = tracker.update(stage(frame))
            for track, face in pairs:
                seen.setdefault(track.track_id, []).append(face)
    finally:
        stage.close()
    whole = [faces for faces in seen.values() if len(faces) == len(frames)]
    whole.sort(key=lambda faces: -float(np.mean([f.bbox[2] * f.bbox[3] for f in faces])))
    return whole


def _clips(task: VideoTask, frames: dict[int, np.ndarray], starts: list[int], staging: Path, counts: _Counts) -> int:
    video = task.video
    folder = staging / "clips" / task.split / video.method
    written = 0
    for j, start in enumerate(starts):
        run = [frames.get(start + i) for i in range(CLIP_LEN)]
        if any(f is None for f in run):
            counts.missed += 1
            continue
        clip = [f for f in run if f is not None]
        tracks = _tracked(clip, task.max_faces)
        firsts = [faces[0] for faces in tracks]
        keep = {id(f) for f in counts.keep(firsts, task.min_face, task.max_faces)}
        for k, faces in enumerate(t for t in tracks if id(t[0]) in keep):
            base = folder / clip_name(stem(video, k), j)
            for i, (frame, face) in enumerate(zip(clip, faces, strict=True)):
                _write_jpg(base.with_name(f"{base.name}_{i}.jpg"), crop_face(frame, face.bbox, task.size_b))
                np.save(base.with_name(f"{base.name}_{i}.npy"), face.lmk5.astype(np.float32))
            written += 1
    return written


def _move_into_place(staging: Path, out: Path) -> None:
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = out / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(staging, ignore_errors=True)


def import_video(task: VideoTask) -> VideoResult:
    """Sample, landmark, crop and write one video; what went wrong is a status, never an exception
    (one bad file must not stop an import of thousands)."""
    video = task.video
    staging = task.out / STAGING / video.key
    shutil.rmtree(staging, ignore_errors=True)
    n = frame_count(video.path)
    if n <= 0:
        return VideoResult(video.key, task.split, video.method, "unreadable")
    positions = frame_positions(n, task.frames_per_video)
    starts = clip_starts(n, task.clips_per_video)
    if not positions and not starts:
        return VideoResult(video.key, task.split, video.method, "too short")
    wanted = set(positions) | {s + i for s in starts for i in range(CLIP_LEN)}
    frames = read_frames(video.path, wanted)
    if not frames:
        return VideoResult(video.key, task.split, video.method, "unreadable")
    counts = _Counts()
    n_frames = _frames(task, {i: frames[i] for i in positions if i in frames}, staging, counts)
    n_clips = _clips(task, frames, starts, staging, counts)
    if n_frames + n_clips == 0:
        shutil.rmtree(staging, ignore_errors=True)
        status: Status = "too small" if counts.too_small else "no face"
        return VideoResult(video.key, task.split, video.method, status, missed=counts.missed)
    _move_into_place(staging, task.out)
    return VideoResult(video.key, task.split, video.method, "done", n_frames, n_clips, counts.faces, counts.missed)
