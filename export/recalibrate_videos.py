"""Imported detectors calibrated on the user's own videos: ``real/`` and ``fake/`` clips, any cameras.

A published detector's softmax was never fitted to these cameras, their compression or their light;
its argmax (0.5) may flag many genuine frames. This samples frames evenly from every clip, cuts each
clip's largest face with the detector's own crop, scores it as the stream would, and refits the
calibration and the threshold on top of the file's own (``recalibrate.refit``: F1-optimal under the
false-alarm cap). Only the metadata changes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from dfstream.export.recalibrate import Recalibrated, apply_refit
from dfstream.models.configs import RecalibrateConfig
from dfstream.models.data.webrtc_codec import CALL_BITRATE, WebrtcCodec, round_trip_video
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.face_models import FaceModel, face_model_files
from dfstream.stream.faces import FaceStage

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"})
CLASSES = (("real", 0), ("fake", 1))


def labelled_videos(root: Path) -> list[tuple[Path, int]]:
    """Every video under ``root/real`` (0) and ``root/fake`` (1); both must hold some."""
    found: list[tuple[Path, int]] = []
    for name, label in CLASSES:
        folder = root / name
        videos = sorted(p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if folder.is_dir() else []
        if not videos:
            raise DatasetError(f"{folder}: no videos ({', '.join(sorted(VIDEO_SUFFIXES))}); calibration needs "
                               "genuine clips in real/ and manipulated ones in fake/")
        found += [(v, label) for v in videos]
    return found


def sampled_frames(video: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` frames spread evenly over the clip (BGR)."""
    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise DatasetError(f"{video}: OpenCV cannot open it")
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.linspace(0, max(total - 1, 0), count).round().astype(int).tolist())
        frames: list[np.ndarray] = []
        index = 0
        while len(frames) < len(wanted):
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                frames.append(image)
            index += 1
        return frames
    finally:
        capture.release()


def video_scores(models: list[FaceModel], videos: list[tuple[Path, int]],
                 frames_per_video: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Labels and each model's P(fake) per sampled frame with a face (its largest)."""
    labels: list[int] = []
    crops: dict[str, list[np.ndarray]] = {m.name: [] for m in models}
    stage = FaceStage(max_faces=1, video=False)
    try:
        for video, label in videos:
            for image in sampled_frames(video, frames_per_video):
                faces = stage(image)
                if not faces:
                    continue
                labels.append(label)
                for m in models:
                    crops[m.name].append(m.crop(image, faces[0]))
    finally:
        stage.close()
    y = np.asarray(labels)
    if len(set(y.tolist())) < 2:
        raise DatasetError("no face was found in the real/ or the fake/ clips; nothing to calibrate on")
    return y, {m.name: m.scores(crops[m.name]) for m in models}


def through_calls(videos: list[tuple[Path, int]], codecs: tuple[WebrtcCodec, ...],
                  folder: Path) -> list[tuple[Path, int]]:
    """Each genuine video once more per codec, as a browser call would deliver it: the genuine set then
    holds what the page's own path sends (fakes stay as they are: the cap is on false alarms)."""
    sent: list[tuple[Path, int]] = []
    for i, (video, label) in enumerate(videos):
        for codec in codecs if label == 0 else ():
            path = folder / f"{i}-{video.stem}.{codec}.mkv"
            round_trip_video(video, path, codec, CALL_BITRATE)
            sent.append((path, 0))
    return sent


def recalibrate_detectors(cfg: RecalibrateConfig) -> list[Recalibrated]:
    """Refit every imported detector in ``cfg.models`` on the clips in ``cfg.videos``."""
    if cfg.videos is None:
        raise DatasetError("imported detectors are calibrated on videos: pass --videos DIR with real/ and fake/")
    files = face_model_files([cfg.models])
    models = [FaceModel.load(f, "cpu") for f in files]
    videos = labelled_videos(cfg.videos)
    with tempfile.TemporaryDirectory(prefix="dfstream-calls-") as tmp:
        videos += through_calls(videos, cfg.through, Path(tmp))
        y, scores = video_scores(models, videos, cfg.frames_per_video)
    done: list[Recalibrated] = []
    for path, model in zip(files, models, strict=True):
        done += apply_refit([path], "face_model", y, scores[model.name], cfg)
    return done
