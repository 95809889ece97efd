"""The fused score the stream shows, measured on held-out clips from the two evaluations' files.

Per clip: model A's calibrated P(fake) averaged over its frames and model B's calibrated clip
P(fake), each centred on its own threshold and weighted as ``stream/scoring.py`` fuses them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dfstream.models.calibration import read_decision
from dfstream.models.metrics import KIND_SEPARATOR, BinaryReport, binary_report, per_clip, reports_by_kind
from dfstream.stream.runtime import calibrated
from dfstream.stream.scoring import DECISION, ScoringConfig, centred


def _rows(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [r["sample"] for r in rows], np.array([int(r["y_true"]) for r in rows]), np.array(
        [float(r["p_fake"]) for r in rows]
    )


def _video(name: str) -> str:
    stem = Path(name).name
    return stem.split(KIND_SEPARATOR, 1)[1] if KIND_SEPARATOR in stem else stem


def fused_reports(frame_eval: Path, clip_test: Path, clip_val: Path) -> dict[str, BinaryReport]:
    """Clip-level reports of the fused score ('all' and per kind), threshold 0.5 as in the stream."""
    a = read_decision(frame_eval / "threshold.json")
    b = read_decision(clip_val / "threshold.json")
    a_threshold, a_cal, b_threshold, b_cal = a.threshold, a.calibration, b.threshold, b.calibration
    names, y, p = _rows(frame_eval / "per_sample.csv")
    clips, _, pa = per_clip(names, y, calibrated(p.astype(np.float32), a_cal))
    a_by_video = {_video(c): v for c, v in zip(clips, pa, strict=True)}
    b_names, b_y, b_p = _rows(clip_test / "per_sample.csv")
    pb = calibrated(b_p.astype(np.float32), b_cal)
    w = ScoringConfig(frame_threshold=a_threshold, clip_threshold=b_threshold).clip_weight
    kept, labels, fused = [], [], []
    for name, label, p_clip in zip(b_names, b_y, pb, strict=True):
        p_frame = a_by_video.get(_video(name))
        if p_frame is None:
            continue
        kept.append(name)
        labels.append(label)
        fused.append((1 - w) * centred(float(p_frame), a_threshold) + w * centred(float(p_clip), b_threshold))
    y_f, p_f = np.array(labels), np.array(fused)
    return {"all": binary_report(y_f, p_f, DECISION)} | reports_by_kind(kept, y_f, p_f, DECISION)
