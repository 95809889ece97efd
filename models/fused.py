"""The fused score the stream shows, measured on held-out clips from the two evaluations' files,
and the share of model B in it, chosen on validation.

Per clip: model A's calibrated P(fake) averaged over its frames and model B's calibrated clip
P(fake), each centred on its own threshold and weighted as ``stream/scoring.py`` fuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dfstream.models.calibration import Decision, read_decision
from dfstream.models.metrics import (
    KIND_SEPARATOR,
    BinaryReport,
    binary_report,
    per_clip,
    read_per_sample,
    reports_by_kind,
)
from dfstream.stream.ort_sessions import calibrated
from dfstream.stream.scoring import CLIP_WEIGHT, DECISION, centred

WEIGHT_GRID = tuple(round(0.1 * i, 1) for i in range(11))


def _video(name: str) -> str:
    stem = Path(name).name
    return stem.split(KIND_SEPARATOR, 1)[1] if KIND_SEPARATOR in stem else stem


@dataclass(frozen=True)
class ClipPairs:
    """Clips scored by both models: model B's name, the label, each model's centred score."""

    names: list[str]
    labels: np.ndarray
    frame: np.ndarray
    clip: np.ndarray

    def fused(self, clip_weight: float) -> np.ndarray:
        return (1.0 - clip_weight) * self.frame + clip_weight * self.clip


def clip_pairs(frame_csv: Path, clip_csv: Path, a: Decision, b: Decision) -> ClipPairs:
    names, y, p = read_per_sample(frame_csv)
    clips, _, pa = per_clip(names, y, calibrated(p.astype(np.float32), a.calibration))
    a_by_video = {_video(c): v for c, v in zip(clips, pa, strict=True)}
    b_names, b_y, b_p = read_per_sample(clip_csv)
    pb = calibrated(b_p.astype(np.float32), b.calibration)
    kept, labels, frame, clip = [], [], [], []
    for name, label, p_clip in zip(b_names, b_y, pb, strict=True):
        p_frame = a_by_video.get(_video(name))
        if p_frame is None:
            continue
        kept.append(name)
        labels.append(label)
        frame.append(centred(float(p_frame), a.threshold))
        clip.append(centred(float(p_clip), b.threshold))
    return ClipPairs(kept, np.array(labels), np.array(frame), np.array(clip))


def fused_reports(
    frame_eval: Path, clip_test: Path, clip_val: Path, clip_weight: float | None = None
) -> dict[str, BinaryReport]:
    """Clip-level reports of the fused score ('all' and per kind), threshold 0.5 as in the stream;
    model B's share is the stream's unless ``clip_weight`` is given."""
    a = read_decision(frame_eval / "threshold.json")
    b = read_decision(clip_val / "threshold.json")
    pairs = clip_pairs(frame_eval / "per_sample.csv", clip_test / "per_sample.csv", a, b)
    fused = pairs.fused(CLIP_WEIGHT if clip_weight is None else clip_weight)
    return {"all": binary_report(pairs.labels, fused, DECISION, pairs.names)} | reports_by_kind(
        pairs.names, pairs.labels, fused, DECISION
    )


def _auc(pairs: ClipPairs, clip_weight: float) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(pairs.labels.tolist())) < 2:
        return None
    return float(roc_auc_score(pairs.labels, pairs.fused(clip_weight)))


def weight_table(runs: Path) -> list[str]:
    """Fused clip AUC on validation and on the held-out test people for each share of model B; the
    validation's best (the smaller share on a tie) in bold, the stream's in italics."""
    a_dir, b_val, b_test = runs / "model-a" / "eval", runs / "model-b" / "val", runs / "model-b" / "test"
    needed = [a_dir / "val_per_sample.csv", a_dir / "per_sample.csv", b_val / "per_sample.csv"]
    needed += [b_test / "per_sample.csv", a_dir / "threshold.json", b_val / "threshold.json"]
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        return [f"no fusion table: {missing[0]} is missing (run make models)", ""]
    a, b = read_decision(a_dir / "threshold.json"), read_decision(b_val / "threshold.json")
    val = clip_pairs(a_dir / "val_per_sample.csv", b_val / "per_sample.csv", a, b)
    test = clip_pairs(a_dir / "per_sample.csv", b_test / "per_sample.csv", a, b)
    val_auc = {w: _auc(val, w) for w in WEIGHT_GRID}
    best = max(WEIGHT_GRID, key=lambda w: (val_auc[w] or 0.0, -w))
    out = [
        f"| model B's share | val clip AUC ({len(val.labels)} clips) | test clip AUC ({len(test.labels)} clips) |",
        "|---|---|---|",
    ]
    for w in WEIGHT_GRID:
        cells = [f"{w:.1f}", *("n/a" if v is None else f"{v:.3f}" for v in (val_auc[w], _auc(test, w)))]
        if w == best:
            cells = [f"**{c}**" for c in cells]
        if w == CLIP_WEIGHT:
            cells[0] = f"*{cells[0]}* (the stream's)"
        out.append("| " + " | ".join(cells) + " |")
    return [*out, ""]
