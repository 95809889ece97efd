"""What the stream emits: one ``ScoreRecord`` per scored frame and track, plus label and source events.

The JSON-lines sink, the WebRTC data channel and tests all use :meth:`to_json` and
:func:`check_record`, so there is one schema. Every record has ``type``:

- ``score``: ``ts``, ``source``, ``frame_id``, ``track_id``, ``bbox`` [x, y, w, h] in pixels,
  ``score_frame`` (model A P(fake), the latest with ``--stride``), ``score_clip`` (model B P(fake),
  null until the track has 16 frames), ``score`` (fused and smoothed, 0.5 = threshold), ``label``
  (real / fake / uncertain), ``latency_ms`` per stage and ``total`` (capture → score),
  ``frame_model_every`` (model A ran on every k-th frame of the track: ``--stride`` or the deadline
  scheduler's k; ``score_frame`` is its latest score); with imported models (``dfstream import``),
  ``models`` {name: latest calibrated P(fake) or null} and ``models_age_ms`` {name: ms from the capture
  of the frame it scored to this record, or null}; with
  ``--explain``, also ``attention``: ``box`` [x, y, side, side] (model A's crop square in pixels) and
  ``grid``, ATTENTION_GRID rows of ATTENTION_GRID values in 0..1 (model A's spatial attention);
- ``label``: a track's label changed (``ts``, ``source``, ``frame_id``, ``track_id``, ``from``, ``to``, ``score``);
- ``status``: a live source's outage (``source``, ``down_at``, ``up_at`` or null, ``attempts``, ``reason``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dfstream.stream.contract.types import ATTENTION_GRID, LABELS, Label
from dfstream.stream.explain import Attention
from dfstream.stream.sources.base import SourceStatus

STAGES: tuple[str, ...] = (
    "decode",
    "queue",
    "faces",
    "crop",
    "frame_cnn",
    "clip_encoder",
    "clip_head",
    "scoring",
    "total",
)
"""Keys of ``latency_ms``; batched stages carry the batch's time for every record of that tick."""


@dataclass(frozen=True)
class ScoreRecord:
    ts: float
    source: str
    frame_id: int
    track_id: int
    bbox: tuple[int, int, int, int]
    score_frame: float | None
    score_clip: float | None
    score: float
    label: Label
    latency_ms: Mapping[str, float]
    attention: Attention | None = None
    frame_model_every: int = 1
    """Model A ran on every k-th frame of this track (``--stride``, or the deadline scheduler's k)."""
    models: tuple[Mapping[str, float | None], Mapping[str, float | None]] | None = None
    """Imported models only: each one's latest calibrated P(fake) and its age in ms (None before its first)."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "score",
            "ts": round(self.ts, 6),
            "source": self.source,
            "frame_id": self.frame_id,
            "track_id": self.track_id,
            "bbox": list(self.bbox),
            "score_frame": _round(self.score_frame),
            "score_clip": _round(self.score_clip),
            "score": _round(self.score),
            "label": self.label,
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "frame_model_every": self.frame_model_every,
        }
        if self.attention is not None:
            data["attention"] = self.attention.to_dict()
        if self.models is not None:
            ps, ages = self.models
            data["models"] = {k: _round(v) for k, v in ps.items()}
            data["models_age_ms"] = {k: None if v is None else round(v, 1) for k, v in ages.items()}
        return data


@dataclass(frozen=True)
class LabelEvent:
    ts: float
    source: str
    frame_id: int
    track_id: int
    previous: Label
    label: Label
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "label",
            "ts": round(self.ts, 6),
            "source": self.source,
            "frame_id": self.frame_id,
            "track_id": self.track_id,
            "from": self.previous,
            "to": self.label,
            "score": _round(self.score),
        }


ALARM_ORDER: tuple[str, ...] = ("none", "real", "uncertain", "fake")
"""A frame's label states from least to most alarming ("none": no face)."""
_ALARM_RANK = {state: i for i, state in enumerate(ALARM_ORDER)}


def most_alarming(records: Sequence[ScoreRecord]) -> ScoreRecord | None:
    """The face a frame is labelled by (its most alarming label, then its highest score); None without one."""
    return max(records, key=lambda r: (_ALARM_RANK[r.label], r.score), default=None)


def status_dict(status: SourceStatus) -> dict[str, Any]:
    return {
        "type": "status",
        "source": status.source,
        "down_at": round(status.down_at, 6),
        "up_at": None if status.up_at is None else round(status.up_at, 6),
        "attempts": status.attempts,
        "reason": status.reason,
    }


def to_json(obj: ScoreRecord | LabelEvent | dict[str, Any]) -> str:
    data = obj if isinstance(obj, dict) else obj.to_dict()
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def _attention_problems(att: object) -> list[str]:
    if not isinstance(att, dict) or set(att) != {"box", "grid"}:
        return ["attention is not {box, grid}"]
    box, grid = att["box"], att["grid"]
    problems = []
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)) or box[2] <= 0:
        problems.append("attention.box is not [x, y, side, side] ints with side > 0")
    rows_ok = isinstance(grid, list) and len(grid) == ATTENTION_GRID
    if not (rows_ok and all(isinstance(r, list) and len(r) == ATTENTION_GRID and all(_prob(v) for v in r)
                            for r in grid)):
        problems.append(f"attention.grid is not {ATTENTION_GRID}x{ATTENTION_GRID} values in 0..1")
    return problems


def _models_problems(models: object, ages: object) -> list[str]:
    if not (isinstance(models, dict) and isinstance(ages, dict) and set(models) == set(ages) and models):
        return ["models and models_age_ms are not objects with the same model names"]
    problems = []
    for name, p in models.items():
        if (p is None) != (ages[name] is None):
            problems.append(f"models.{name} and its age are not both null or both set")
        elif p is not None and not (_prob(p) and _duration(ages[name])):
            problems.append(f"models.{name} is not a probability with a non-negative age")
    return problems


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def _prob(x: object) -> bool:
    return isinstance(x, float | int) and not isinstance(x, bool) and math.isfinite(x) and 0.0 <= x <= 1.0


def _duration(x: object) -> bool:
    return isinstance(x, float | int) and not isinstance(x, bool) and math.isfinite(x) and x >= 0.0


def check_record(data: Mapping[str, Any]) -> list[str]:
    """Problems with one ``score`` record (empty when it follows the schema)."""
    problems: list[str] = []
    expected = {"type", "ts", "source", "frame_id", "track_id", "bbox", "score_frame", "score_clip", "score", "label",
                "latency_ms", "frame_model_every"}
    optional = {"attention", "models", "models_age_ms"}
    if set(data) - optional != expected or ("models" in data) != ("models_age_ms" in data):
        problems.append(f"keys {sorted((set(data) - optional) ^ expected)} differ from the schema")
        return problems
    if "models" in data:
        problems += _models_problems(data["models"], data["models_age_ms"])
    if "attention" in data:
        problems += _attention_problems(data["attention"])
    if data["type"] != "score":
        problems.append("type is not 'score'")
    if not isinstance(data["ts"], float) or data["ts"] <= 0:
        problems.append("ts is not a positive float")
    if not isinstance(data["source"], str) or not data["source"]:
        problems.append("source is not a non-empty string")
    for key in ("frame_id", "track_id"):
        if not isinstance(data[key], int) or data[key] < 0:
            problems.append(f"{key} is not a non-negative int")
    bbox = data["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int) for v in bbox)) or bbox[2] <= 0:
        problems.append("bbox is not [x, y, w, h] ints with w > 0")
    for key in ("score_frame", "score_clip"):
        if data[key] is not None and not _prob(data[key]):
            problems.append(f"{key} is neither null nor a probability")
    if not _prob(data["score"]):
        problems.append("score is not a probability")
    every = data["frame_model_every"]
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        problems.append("frame_model_every is not a positive int")
    if data["label"] not in LABELS:
        problems.append(f"label {data['label']!r} is not one of {LABELS}")
    lat = data["latency_ms"]
    if not isinstance(lat, dict) or set(lat) != set(STAGES) or not all(_duration(v) for v in lat.values()):
        problems.append(f"latency_ms does not hold the stages {STAGES} as non-negative numbers")
    return problems
