"""Readers for the two origin notebooks' dataset layouts (framework-free: paths, labels, arrays).

* Frames (model A): ``ROOT/{train,val,test}/{real,fake}/*.jpg|png|…``; label 1 = fake.
* Clips (model B): ``ROOT/<class>/{video}_{i}.jpg`` + ``{video}_{i}.npy``; ``original/`` is real,
  every other folder fake; split by video so no clip's frames sit on both sides.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfstream.stream.contract.exceptions import DatasetError, InputPathError
from dfstream.stream.contract.types import CLIP_LEN, LMK_DIM

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
FRAME_CLASSES = ("real", "fake")
REAL_CLIP_FOLDER = "original"


@dataclass(frozen=True)
class ImageSplit:
    """Decodable images of one split, their labels (1 = fake), and how many files were skipped."""

    paths: tuple[Path, ...]
    labels: tuple[int, ...]
    skipped: int

    def __len__(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class ClipRef:
    folder: Path
    video: str
    label: int


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise InputPathError(f"{what} not found: {path}")
    if not path.is_dir():
        raise InputPathError(f"{what} is not a folder: {path}")
    return path


def _decodes(path: Path) -> bool:
    return cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_8) is not None


def _require_two_classes(labels: list[int] | tuple[int, ...], where: Path) -> None:
    counts = Counter(labels)
    if not labels:
        raise DatasetError(f"{where}: no usable samples")
    if len(counts) < 2:
        only = "fake" if 1 in counts else "real"
        raise DatasetError(f"{where}: only '{only}' samples ({len(labels)}); both real and fake are needed")


def scan_image_split(root: Path, split: str) -> ImageSplit:
    """List ``root/split/{real,fake}`` images that decode; undecodable files are skipped and counted."""
    split_dir = require_dir(root / split, f"'{split}' split folder")
    paths: list[Path] = []
    labels: list[int] = []
    skipped = 0
    for label, name in enumerate(FRAME_CLASSES):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if _decodes(path):
                paths.append(path)
                labels.append(label)
            else:
                skipped += 1
    if skipped:
        log.warning("%s: skipped %d image(s) that failed to decode", split_dir, skipped)
    _require_two_classes(labels, split_dir)
    return ImageSplit(tuple(paths), tuple(labels), skipped)


def scan_clip_folders(root: Path, clip_len: int = CLIP_LEN) -> list[ClipRef]:
    """Videos with frames ``_0`` … ``_{clip_len-1}`` (jpg + npy) present; others skipped and counted."""
    require_dir(root, "clip dataset folder")
    refs: list[ClipRef] = []
    incomplete = undecodable = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = 0 if folder.name == REAL_CLIP_FOLDER else 1
        videos = {p.stem.rsplit("_", 1)[0] for p in folder.glob("*_*.jpg")}
        for video in sorted(videos):
            complete = all(
                (folder / f"{video}_{i}.jpg").is_file() and (folder / f"{video}_{i}.npy").is_file()
                for i in range(clip_len)
            )
            if not complete:
                incomplete += 1
            elif not all(_decodes(folder / f"{video}_{i}.jpg") for i in range(clip_len)):
                undecodable += 1
            else:
                refs.append(ClipRef(folder, video, label))
    if incomplete:
        log.warning("%s: skipped %d video(s) without frames 0..%d as .jpg + .npy", root, incomplete, clip_len - 1)
    if undecodable:
        log.warning("%s: skipped %d video(s) with a frame that failed to decode", root, undecodable)
    _require_two_classes([r.label for r in refs], root)
    return refs


def split_by_video(
    refs: list[ClipRef], val_fraction: float = 0.2, seed: int = 42
) -> tuple[list[ClipRef], list[ClipRef]]:
    """Deterministic train/val split over whole videos (notebook B: 80/20, seed 42)."""
    order = sorted(refs, key=lambda r: (r.folder.name, r.video))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * (1 - val_fraction))
    return order[:cut], order[cut:]


def load_clip_frame(ref: ClipRef, i: int, size: int) -> np.ndarray:
    """Frame ``i`` of a clip as 3×S×S float32 BGR in 0..1, as notebook B feeds it."""
    img_path = ref.folder / f"{ref.video}_{i}.jpg"
    img = cv2.imread(str(img_path))
    if img is None:
        raise DatasetError(f"{img_path}: failed to decode")
    img = cv2.resize(img, (size, size))
    return img.transpose(2, 0, 1).astype(np.float32) / 255.0


def load_clip(ref: ClipRef, size: int, clip_len: int = CLIP_LEN) -> tuple[np.ndarray, np.ndarray]:
    """T×3×S×S float32 BGR frames in 0..1 and T×5 landmarks, as notebook B feeds them."""
    frames = np.empty((clip_len, 3, size, size), dtype=np.float32)
    lmks = np.empty((clip_len, LMK_DIM), dtype=np.float32)
    for i in range(clip_len):
        frames[i] = load_clip_frame(ref, i, size)
        values = np.load(ref.folder / f"{ref.video}_{i}.npy", allow_pickle=False).astype(np.float32).reshape(-1)
        if values.shape != (LMK_DIM,):
            raise DatasetError(f"{ref.folder / ref.video}_{i}.npy: holds {values.size} values, expected {LMK_DIM}")
        lmks[i] = values
    return frames, lmks
