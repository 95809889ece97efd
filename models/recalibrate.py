"""Shipped graphs calibrated again on a data build's validation people, without retraining.

A threshold and a calibration fitted on a few validation people need not keep the false-alarm cap
on others: the bundled model B's, fitted on 4 people, flagged 16 % of the genuine clips of 13
(MODEL_CARD, "Thirteen validation people"). This refits both on top of what each file carries.
The runtime's P = sigmoid(a·logit(p) + b) is scored on validation; a second fit
P' = sigmoid(a2·logit(P) + b2) composes into (a2·a, a2·b + b2); the threshold is the F1-optimal one
on P' under the cap. Only the metadata changes: nodes and weights stay as they were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfstream.config import RecalibrateConfig
from dfstream.export.file_names import precision_path
from dfstream.export.metadata import ModelMetadata
from dfstream.models.calibration import fit_platt
from dfstream.models.datasets import scan_image_split
from dfstream.models.eval_bundled import clip_scores, frame_scores
from dfstream.models.metrics import f1_optimal_threshold, rank_auc
from dfstream.stream.engine import ModelSet, model_files
from dfstream.stream.runtime import calibrated, read_metadata

CALIBRATED_ROLES = ("frame_cnn", "clip_head")
"""The graphs whose output is a P(fake) with a threshold (the encoder's is an embedding)."""


@dataclass(frozen=True)
class Operating:
    """A file's calibration and threshold, and what they flag on the validation samples."""

    calibration: tuple[float, float]
    threshold: float
    genuine_flagged: float
    fakes_flagged: float


@dataclass(frozen=True)
class Recalibrated:
    path: Path
    role: str
    samples: int
    auc: float
    before: Operating
    after: Operating

    def line(self) -> str:
        b, a = self.before, self.after
        return (
            f"{self.path.name}: {self.samples} validation samples, AUC {self.auc:.3f} | threshold "
            f"{b.threshold:.3f} -> {a.threshold:.3f}, calibration ({b.calibration[0]:.3f}, {b.calibration[1]:.3f}) "
            f"-> ({a.calibration[0]:.3f}, {a.calibration[1]:.3f}) | genuine flagged {b.genuine_flagged:.1%} -> "
            f"{a.genuine_flagged:.1%}, fakes flagged {b.fakes_flagged:.1%} -> {a.fakes_flagged:.1%}"
        )


def _flagged(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    return float(np.mean(p[y == 0] >= threshold)), float(np.mean(p[y == 1] >= threshold))


def refit(meta: ModelMetadata, y: np.ndarray, p: np.ndarray, max_fpr: float) -> tuple[ModelMetadata, Operating]:
    """``meta`` with a calibration composed on top of its own and a threshold under the cap, from the
    validation scores ``p`` that the runtime gives with ``meta`` as it is."""
    a, b = meta.calibration
    a2, b2 = fit_platt(y, p)
    again = calibrated(p, (a2, b2))
    threshold = f1_optimal_threshold(y, again, max_fpr=max_fpr)
    composed = (a2 * a, a2 * b + b2)
    return dataclasses.replace(meta, calibration=composed, threshold=threshold), Operating(
        composed, threshold, *_flagged(y, again, threshold)
    )


def _write(path: Path, meta: ModelMetadata, out: Path) -> None:
    import onnx

    from dfstream.export.onnx_files import write_with_metadata

    write_with_metadata(onnx.load(str(path)), meta, out)


def _one(path: Path, role: str, y: np.ndarray, p: np.ndarray, cfg: RecalibrateConfig) -> Recalibrated:
    meta = read_metadata(path)
    new_meta, after = refit(meta, y, p, cfg.max_fpr)
    before = Operating(meta.calibration, meta.threshold, *_flagged(y, p, meta.threshold))
    out = (cfg.out_dir or path.parent) / path.name
    _write(path, new_meta, out)
    return Recalibrated(out, role, len(y), rank_auc(y, p), before, after)


def recalibrate(cfg: RecalibrateConfig) -> list[Recalibrated]:
    """Each calibrated graph of ``cfg.models`` (every precision variant of model A, scored as the
    runtime runs it) refitted on ``cfg.data_dir``'s validation split; files written to ``out_dir``
    (default: in place)."""
    done: list[Recalibrated] = []
    if "frame_cnn" in cfg.roles:
        frames = scan_image_split(cfg.data_dir / "frames", "val")
        y = np.asarray(frames.labels)
        fp32 = model_files(cfg.models)["frame_cnn"]
        for precision in ("fp32", "fp16", "int8"):
            path = precision_path(fp32, precision)
            if path.is_file():
                models = ModelSet.load(cfg.models, device="cpu", precision=precision)
                done.append(_one(path, "frame_cnn", y, frame_scores(models, frames), cfg))
    if "clip_head" in cfg.roles:
        models = ModelSet.load(cfg.models, device="cpu", precision="fp32")
        _, y, p = clip_scores(models, cfg.data_dir / "clips" / "val")
        done.append(_one(model_files(cfg.models)["clip_head"], "clip_head", y, p, cfg))
    return done
