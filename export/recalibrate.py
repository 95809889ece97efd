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
from typing import get_args

import numpy as np

from dfstream.models.calibration import fit_platt
from dfstream.models.configs import RecalibrateConfig
from dfstream.models.datasets import scan_image_split
from dfstream.models.eval_bundled import clip_scores, frame_scores
from dfstream.models.metrics import f1_optimal_threshold, rank_auc
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.contract.metadata import ModelMetadata, Precision
from dfstream.stream.model_set import ModelSet, model_files
from dfstream.stream.ort_sessions import calibrated, read_metadata


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


@dataclass(frozen=True)
class Refit:
    """A second calibration (a2, b2) on top of a graph's own, and the threshold on the result."""

    second: tuple[float, float]
    threshold: float

    def applied_to(self, meta: ModelMetadata) -> ModelMetadata:
        (a, b), (a2, b2) = meta.calibration, self.second
        return dataclasses.replace(meta, calibration=(a2 * a, a2 * b + b2), threshold=self.threshold)


def refit(y: np.ndarray, p: np.ndarray, max_fpr: float) -> Refit:
    """From the validation scores ``p`` that the runtime gives with a file's metadata as it is."""
    second = fit_platt(y, p)
    return Refit(second, f1_optimal_threshold(y, calibrated(p, second), max_fpr=max_fpr))


def _write(path: Path, meta: ModelMetadata, out: Path) -> None:
    import onnx

    from dfstream.export.onnx_files import write_with_metadata

    write_with_metadata(onnx.load(str(path)), meta, out)


def apply_refit(paths: list[Path], role: str, y: np.ndarray, p: np.ndarray,
                cfg: RecalibrateConfig) -> list[Recalibrated]:
    """One refit from the scores of the graph the runtime runs, written into each of ``paths`` (the
    precision variants of one model share one operating point, as export and quantize leave them)."""
    fit = refit(y, p, cfg.max_fpr)
    again = calibrated(p, fit.second)
    auc = rank_auc(y, p)
    done = []
    for path in paths:
        meta = read_metadata(path)
        new = fit.applied_to(meta)
        out = (cfg.out_dir or path.parent) / path.name
        _write(path, new, out)
        before = Operating(meta.calibration, meta.threshold, *_flagged(y, p, meta.threshold))
        after = Operating(new.calibration, new.threshold, *_flagged(y, again, new.threshold))
        done.append(Recalibrated(out, role, len(y), auc, before, after))
    return done


def recalibrate(cfg: RecalibrateConfig) -> list[Recalibrated]:
    """Model A (every precision variant gets the refit) and model B's head, scored as the runtime
    runs them on a CPU (int8 graphs where they exist) and refitted on ``cfg.data_dir``'s validation
    split; files written to ``out_dir`` (default: in place)."""
    if cfg.data_dir is None:
        raise DatasetError("the bundled kind of models is refitted on a data build: pass --data DIR")
    done: list[Recalibrated] = []
    models = ModelSet.load(cfg.models, device="cpu", precision="auto")
    files = model_files(cfg.models)
    if "frame_cnn" in cfg.roles:
        frames = scan_image_split(cfg.data_dir / "frames", "val")
        variants = [v for v in (precision_path(files["frame_cnn"], x) for x in get_args(Precision)) if v.is_file()]
        done += apply_refit(variants, "frame_cnn", np.asarray(frames.labels), frame_scores(models, frames), cfg)
    if "clip_head" in cfg.roles:
        _, y, p = clip_scores(models, cfg.data_dir / "clips" / "val")
        done += apply_refit([files["clip_head"]], "clip_head", y, p, cfg)
    return done
