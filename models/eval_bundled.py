"""The shipped ONNX graphs scored on the data build's labelled splits, through the stream's own runtime.

``eval cnn`` and ``eval clip`` score training checkpoints. What a user runs is the exported graphs,
with the calibration and thresholds in their metadata and, on a CPU, model A's int8 variant. This
scores those (on validation and test people alike) and writes its reports in the layout of
``make models`` (``model-a/eval``, ``model-b/val``, ``model-b/test``), so ``dfstream eval card OUT``
and ``--table fusion`` print the card's held-out tables for the bundled files themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfstream.models.configs import EvalBundledConfig
from dfstream.models.datasets import ClipRef, ImageSplit, load_clip, scan_clip_folders, scan_image_split
from dfstream.models.metrics import (
    BinaryReport,
    binary_report,
    face_of,
    write_clip_level,
    write_per_sample,
    write_reports,
)
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.model_set import ModelSet

log = logging.getLogger(__name__)

BATCH = 32
@dataclass(frozen=True)
class BundledReports:
    """Held-out (test) reports of the shipped graphs: model A per frame, model B per clip."""

    frame: BinaryReport
    clip: BinaryReport
    clip_within_face_auc: float | None
    """Model B's test AUC within each face (its genuine clips against the fakes made from it), averaged."""
    files: dict[str, str]
    """Role → the graph file that ran, with its precision and provider."""


def _decision(threshold: float, models: Path) -> dict[str, object]:
    """A threshold.json for scores that are already calibrated: the metadata's threshold, identity calibration."""
    return {
        "threshold": threshold,
        "threshold_raw": threshold,
        "calibration": [1.0, 0.0],
        "chosen_on": f"metadata of the graphs in {models}",
    }


def frame_scores(models: ModelSet, split: ImageSplit) -> np.ndarray:
    """Model A's calibrated P(fake) per image, resized to its input as ``eval cnn`` resizes."""
    size = models.frame_input.size
    out = []
    for i in range(0, len(split), BATCH):
        crops = []
        for path in split.paths[i : i + BATCH]:
            image = cv2.imread(str(path))
            if image is None:
                raise DatasetError(f"{path}: failed to decode")
            crops.append(cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR))
        out.append(models.frame_scores(crops))
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def encoder_crops(ref: ClipRef, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    """A clip's 16 crops as the encoder gets them (uint8 BGR, size²) and its landmark rows."""
    frames, lmks = load_clip(ref, size)  # T×3×S×S BGR 0..1, exactly the jpg's values over 255
    return list(np.rint(frames.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)), lmks


def clip_scores(
    models: ModelSet, root: Path, change: Callable[[np.ndarray], np.ndarray] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Model B's calibrated clip P(fake): the encoder on each of 16 crops (each first through ``change``,
    if given), then the head on crops + landmarks."""
    refs = scan_clip_folders(root)
    size = models.clip_input.size
    rows = []
    for ref in refs:
        crops, lmks = encoder_crops(ref, size)
        if change is not None:
            crops = [change(c) for c in crops]
        rows.append(np.concatenate([models.embed(crops), lmks], axis=1).astype(np.float32))
    p = np.concatenate([models.clip_scores(rows[i : i + BATCH]) for i in range(0, len(rows), BATCH)])
    return [f"{r.folder.name}/{r.video}" for r in refs], np.array([r.label for r in refs]), p


def _faces(names: list[str]) -> dict[str, list[int]]:
    faces: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        face = face_of(name)
        if face is not None:
            faces.setdefault(face, []).append(i)
    return faces


def by_face(names: list[str], y: np.ndarray, p: np.ndarray) -> dict[str, dict[str, float | None]]:
    """Per face of the data build: its fakes ranked against its own genuine clips (None without both),
    and the mean P(fake) of its genuine and of its fake clips. Beside the pooled AUC this separates
    what a model knows of manipulation from how each person's pictures score."""
    from sklearn.metrics import roc_auc_score

    def mean(values: np.ndarray) -> float | None:
        return float(values.mean()) if len(values) else None

    out: dict[str, dict[str, float | None]] = {}
    for face, i in sorted(_faces(names).items()):
        auc = float(roc_auc_score(y[i], p[i])) if len(set(y[i].tolist())) == 2 else None
        out[face] = {"auc": auc, "genuine_mean": mean(p[i][y[i] == 0]), "fake_mean": mean(p[i][y[i] == 1])}
    return out


def within_face_aucs(names: list[str], y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The faces with both genuine and fake clips, and their within-face AUC."""
    return {face: r["auc"] for face, r in by_face(names, y, p).items() if r["auc"] is not None}


def evaluate_bundled(cfg: EvalBundledConfig) -> BundledReports:
    models = ModelSet.load(cfg.models, device=cfg.device, precision=cfg.precision)
    a_threshold = models.thresholds[0]
    a_dir = cfg.out_dir / "model-a" / "eval"

    val, test = scan_image_split(cfg.data_dir / "frames", "val"), scan_image_split(cfg.data_dir / "frames", "test")
    val_y, val_p = np.asarray(val.labels), frame_scores(models, val)
    test_y, test_p = np.asarray(test.labels), frame_scores(models, test)
    names = [str(p) for p in test.paths]
    frame = binary_report(test_y, test_p, a_threshold, names)
    write_reports(a_dir, frame, names, test_y, test_p, val_y, val_p)
    write_per_sample(a_dir / "val_per_sample.csv", [str(p) for p in val.paths], val_y, val_p, a_threshold)
    write_clip_level(a_dir, names, test_y, test_p, a_threshold)
    (a_dir / "threshold.json").write_text(json.dumps(_decision(a_threshold, cfg.models), indent=2) + "\n")

    _clip_split(models, cfg, "val")
    clip, within = _clip_split(models, cfg, "test")
    mean = float(np.mean(list(within.values()))) if within else None
    return BundledReports(frame, clip, mean, models.describe())


def _clip_split(models: ModelSet, cfg: EvalBundledConfig, split: str) -> tuple[BinaryReport, dict[str, float]]:
    threshold = models.thresholds[1]
    out = cfg.out_dir / "model-b" / split
    names, y, p = clip_scores(models, cfg.data_dir / "clips" / split)
    report = binary_report(y, p, threshold, names)
    write_reports(out, report, names, y, p, y, p)
    (out / "threshold.json").write_text(json.dumps(_decision(threshold, cfg.models), indent=2) + "\n")
    faces = by_face(names, y, p)
    (out / "by_face.json").write_text(json.dumps(faces, indent=2) + "\n")
    within = {face: r["auc"] for face, r in faces.items() if r["auc"] is not None}
    log.info("model B on the %s clips: AUC %s", split, report.auc)
    return report, within
