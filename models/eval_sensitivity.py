"""What model B keys on: its clip scores when every crop of a labelled split gets one whole-picture change.

A change that touches genuine and fake crops alike says nothing about manipulation. If it moves the
genuine clips' P(fake) a lot, or takes the AUC toward 0.5, the model reads that property of the
picture (sharpness, colour) as evidence, and pictures that differ in it from the training photos
(a soft webcam, an old album) score as fakes, or fakes as genuine. The shipped graphs are scored as
the stream runs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from dfstream.models.data.texture import nl_means, saturation
from dfstream.models.datasets import scan_clip_folders
from dfstream.models.eval_bundled import clip_scores, encoder_crops
from dfstream.stream.model_set import ModelSet


def _blur(crop: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(crop, (0, 0), 1.0)


def _sharpen(crop: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(crop, 1.6, cv2.GaussianBlur(crop, (0, 0), 1.0), -0.6, 0)


def _grey(crop: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _saturated(crop: np.ndarray) -> np.ndarray:
    return saturation(crop, 1.5)


def _half_resolution(crop: np.ndarray) -> np.ndarray:
    h, w = crop.shape[:2]
    return cv2.resize(cv2.resize(crop, (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h))


def _jpeg(crop: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else crop


def _denoise(crop: np.ndarray) -> np.ndarray:
    return nl_means(crop, 5.0)


def _zoom_in(crop: np.ndarray) -> np.ndarray:
    """The face 1.25× larger about the crop's centre: less of its surroundings, the blend's edge nearer the border."""
    side = crop.shape[0]
    m = cv2.getRotationMatrix2D((side / 2, side / 2), 0, 1.25)
    return cv2.warpAffine(crop, m, (crop.shape[1], side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


CHANGES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "none": None,
    "blur (Gaussian, sigma 1 px)": _blur,
    "sharpen (unsharp mask)": _sharpen,
    "half resolution": _half_resolution,
    "JPEG quality 30": _jpeg,
    "grey": _grey,
    "saturation x1.5": _saturated,
    "denoise (non-local means)": _denoise,
    "zoom in 1.25x": _zoom_in,
}


@dataclass(frozen=True)
class ChangeScores:
    change: str
    auc: float | None
    genuine_mean: float
    fake_mean: float
    genuine_flagged: float
    """Share of genuine clips at or over model B's threshold."""
    fake_flagged: float


def crop_detail(crop: np.ndarray) -> float:
    """Log variance of the Laplacian of a BGR crop's grey values: higher is crisper."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return float(np.log(cv2.Laplacian(grey, cv2.CV_64F).var() + 1e-6))


@dataclass(frozen=True)
class Detail:
    """Mean crop detail of a split's genuine and fake clips, on the crops as the encoder gets them:
    whether a split's people or fakes are softer than another's is measured, not guessed."""

    genuine: float
    fake: float


def split_detail(clips: Path, size: int) -> Detail:
    per_clip: dict[int, list[float]] = {0: [], 1: []}
    for ref in scan_clip_folders(clips):
        crops, _ = encoder_crops(ref, size)
        per_clip[ref.label].append(float(np.mean([crop_detail(c) for c in crops])))
    return Detail(*(float(np.mean(v)) if v else float("nan") for v in (per_clip[0], per_clip[1])))


def scores_under(models: ModelSet, clips: Path, name: str) -> ChangeScores:
    from sklearn.metrics import roc_auc_score

    _, y, p = clip_scores(models, clips, CHANGES[name])
    threshold = models.thresholds[1]
    genuine, fake = p[y == 0], p[y == 1]
    return ChangeScores(
        change=name,
        auc=float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else None,
        genuine_mean=float(genuine.mean()) if len(genuine) else float("nan"),
        fake_mean=float(fake.mean()) if len(fake) else float("nan"),
        genuine_flagged=float((genuine >= threshold).mean()) if len(genuine) else float("nan"),
        fake_flagged=float((fake >= threshold).mean()) if len(fake) else float("nan"),
    )


def evaluate_sensitivity(
    models_dir: Path, clips: Path, out: Path, device: str = "cpu"
) -> tuple[list[ChangeScores], Detail]:
    """Every change of ``CHANGES`` on the clips of ``clips``, and the unchanged crops' detail; written
    to ``out/sensitivity.json``."""
    models = ModelSet.load(models_dir, device=device, precision="auto")
    rows = [scores_under(models, clips, name) for name in CHANGES]
    detail = split_detail(clips, models.clip_input.size)
    out.mkdir(parents=True, exist_ok=True)
    body = {"models": str(models_dir), "clips": str(clips), "threshold": models.thresholds[1],
            "changes": [asdict(r) for r in rows], "detail": asdict(detail)}  # fmt: skip
    (out / "sensitivity.json").write_text(json.dumps(body, indent=2) + "\n")
    return rows, detail


def detail_line(detail: Detail) -> str:
    return (f"crop detail (mean log variance of the Laplacian, unchanged crops): genuine {detail.genuine:.2f}, "
            f"fake {detail.fake:.2f}")


def sensitivity_lines(rows: list[ChangeScores]) -> list[str]:
    lines = [
        "| change to every crop | AUC | genuine mean P(fake) | fake mean P(fake) | genuine flagged | fakes flagged |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        auc = "—" if r.auc is None else f"{r.auc:.3f}"
        lines.append(f"| {r.change} | {auc} | {r.genuine_mean:.3f} | {r.fake_mean:.3f} | {r.genuine_flagged:.0%} "
                     f"| {r.fake_flagged:.0%} |")  # fmt: skip
    return lines
