"""Shared fixtures: tiny on-disk datasets in both notebooks' layouts, and tiny trained-looking models."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiortc  # noqa: F401  - first: loading pylibsrtp (aiortc) after TensorFlow segfaults the process
import cv2
import numpy as np
import pytest

from dfstream.stream.settings import PipelineOptions

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TINY = 32


def _image(rng: np.random.Generator, fake: bool, size: int = TINY) -> np.ndarray:
    """Smooth colour fields; 'fake' ones carry a blocky high-frequency patch a CNN can pick up."""
    ys, xs = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    base = np.stack([xs, ys, 1 - xs], axis=-1) * rng.uniform(120, 220) + rng.uniform(0, 30)
    if fake:
        q = size // 4
        block = (rng.integers(0, 2, (q // 2, q // 2, 1)) * 90).repeat(2, 0).repeat(2, 1)
        base[q : 2 * q, q : 2 * q] += block
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def frame_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Notebook A layout: train/ val/ test/ × real/ fake/, 8 images per class and split."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(8):
                cv2.imwrite(str(folder / f"{label}_{i}.png"), _image(rng, label == "fake"))
    return root


def write_clip(folder: Path, video: str, rng: np.random.Generator, fake: bool, frames: int = 16) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        cv2.imwrite(str(folder / f"{video}_{i}.jpg"), _image(rng, fake))
        np.save(folder / f"{video}_{i}.npy", rng.uniform(0, 1, 5).astype(np.float32))


@pytest.fixture(scope="session")
def clip_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Notebook B layout: original/ (real) and two fake folders, 16 frames per video."""
    root = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(1)
    for v in range(5):
        write_clip(root / "original", f"vid{v:02d}", rng, fake=False)
    for kind in ("Deepfakes", "FaceSwap"):
        for v in range(3):
            write_clip(root / kind, f"{kind.lower()}{v:02d}", rng, fake=True)
    return root


@pytest.fixture(scope="session")
def stream_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained models A and B exported through the real path at tiny input sizes (fast to run)."""
    from dfstream.export.untrained import export_untrained

    folder = tmp_path_factory.mktemp("stream_models")
    export_untrained(folder, frame_size=32, clip_size=64)
    return folder


@pytest.fixture(scope="session")
def data_build(tmp_path_factory: pytest.TempPathFactory, clip_dataset: Path) -> Path:
    """A data build's layout: clips/{val,test}/<kind>/ and, as the build names them, every 4th frame
    of each clip in frames/{val,test}/{real,fake}/<kind>__<video>_<i>.jpg."""
    from dfstream.models.metrics import KIND_SEPARATOR

    root = tmp_path_factory.mktemp("build")
    for split in ("val", "test"):
        (root / "clips").mkdir(exist_ok=True)
        (root / "clips" / split).symlink_to(clip_dataset)
        for kind in (p for p in clip_dataset.iterdir() if p.is_dir()):
            folder = root / "frames" / split / ("real" if kind.name == "original" else "fake")
            folder.mkdir(parents=True, exist_ok=True)
            for jpg in kind.glob("*_[048].jpg"):
                (folder / f"{kind.name}{KIND_SEPARATOR}{jpg.name}").symlink_to(jpg)
    return root


def pipeline_options(**fields: Any) -> PipelineOptions:
    """What ``dfstream run`` resolves from these fields (``serve=True``: what ``dfstream serve`` does)."""
    from dfstream.stream.contract.paths import BUNDLED_MODELS, SAMPLE_CLIP
    from dfstream.stream.run_config import RunConfig, ServeConfig

    if fields.pop("serve", False):
        return ServeConfig(models_dir=BUNDLED_MODELS, **fields).pipeline_options()
    return RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=BUNDLED_MODELS, **fields).pipeline_options()


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """MP4 through OpenCV's FFmpeg backend (mp4v), enough for test inputs."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="session")
def face_bank_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A face bank of three genuine frames of the sample clip, standing in for three people."""
    from dfstream.models.data.bank import write_bank
    from dfstream.stream.contract.paths import SAMPLE_CLIP
    from dfstream.stream.faces import FaceStage

    frames = read_frames(SAMPLE_CLIP, limit=81)
    stage = FaceStage(max_faces=1, video=False)
    try:
        faces = [(who, frames[i], stage(frames[i])[0].points) for who, i in (("a", 0), ("b", 40), ("c", 80))]
    finally:
        stage.close()
    return write_bank(tmp_path_factory.mktemp("bank") / "train.npz", faces)


STRICT_SKIPS = os.environ.get("DFSTREAM_STRICT_SKIPS") == "1"
"""``make test`` (and so CI) sets it: a skipped test outside the ``gpu`` mark is a failure there, so a
broken import (``importorskip("ray")``) or a missing Debian part cannot pass unnoticed."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if STRICT_SKIPS and report.skipped and "gpu" not in item.keywords and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped outside the gpu mark ({reason}); DFSTREAM_STRICT_SKIPS=1 fails every such skip"
    return report
