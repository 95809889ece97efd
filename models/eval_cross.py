"""``dfstream eval cross``: exported graphs scored on another data set's import, the table the field reports
(train on one data set, test on another), per manipulation method, at frame (clip) and video level.

Scores go through the stream's own runtime (``ModelSet``) with the thresholds and calibration in the
graphs' metadata; each AUC carries its interval with whole people (the import's groups) resampled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from dfstream.models.configs import EvalCrossConfig
from dfstream.models.data.footage_video import video_of_clip
from dfstream.models.datasets import scan_image_split
from dfstream.models.eval_bundled import clip_scores, frame_scores
from dfstream.models.metrics import (
    BinaryReport,
    binary_report,
    mean_per,
    per_clip,
    person_of,
    reports_by_kind,
    write_per_sample,
)
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.model_set import ModelSet

ALL_METHODS = "all"


@dataclass(frozen=True)
class CrossRow:
    model: str
    level: str
    method: str
    people: int
    report: BinaryReport


def _rows(model: str, level: str, names: Sequence[str], y: np.ndarray, p: np.ndarray,
          threshold: float) -> list[CrossRow]:
    if len(set(y.tolist())) < 2:
        raise DatasetError(f"model {model}, {level} level: the split needs real and fake samples")
    reports = {ALL_METHODS: binary_report(y, p, threshold, names)} | reports_by_kind(names, y, p, threshold)
    people = len({person_of(n) for n in names})
    return [CrossRow(model, level, method, people, r) for method, r in reports.items()]


def per_video(names: Sequence[str], y: np.ndarray, p: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Clip scores averaged over each video's clips (``{video}.cNN`` → ``{video}``)."""
    return mean_per(video_of_clip, names, y, p)


def evaluate_cross(cfg: EvalCrossConfig) -> list[CrossRow]:
    models = ModelSet.load(cfg.models, device=cfg.device, precision=cfg.precision)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[CrossRow] = []
    frames = scan_image_split(cfg.data_dir / "frames", cfg.split)
    names = [str(path.relative_to(cfg.data_dir)) for path in frames.paths]
    y, p = np.asarray(frames.labels), frame_scores(models, frames)
    a_threshold, b_threshold = models.thresholds[0], models.thresholds[1]
    write_per_sample(cfg.out_dir / "model_a_frames.csv", names, y, p, a_threshold)
    rows += _rows("A", "frame", names, y, p, a_threshold)
    rows += _rows("A", "video", *per_clip(names, y, p), a_threshold)
    clip_names, clip_y, clip_p = clip_scores(models, cfg.data_dir / "clips" / cfg.split)
    write_per_sample(cfg.out_dir / "model_b_clips.csv", clip_names, clip_y, clip_p, b_threshold)
    rows += _rows("B", "clip", clip_names, clip_y, clip_p, b_threshold)
    rows += _rows("B", "video", *per_video(clip_names, clip_y, clip_p), b_threshold)
    (cfg.out_dir / "cross.json").write_text(json.dumps({
        "models": models.describe(), "data": str(cfg.data_dir), "split": cfg.split,
        "rows": [asdict(r) for r in rows],
    }, indent=2) + "\n")
    (cfg.out_dir / "cross.md").write_text("\n".join(table(rows)) + "\n")
    return rows


def table(rows: Sequence[CrossRow]) -> list[str]:
    lines = ["| model | level | method | n (fake) | people | AUC (95 % interval, people resampled) | F1 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.level} | {r.method} | {r.report.n} ({r.report.n_fake}) | {r.people} | "
                     f"{r.report.auc_text} | {r.report.f1:.3f} |")
    return lines
