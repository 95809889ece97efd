"""Deepfake events: a track whose label turns fake opens one; it ends when the label leaves fake.

:class:`EventDetector` is the pure rule (records in, start/end transitions out).
:class:`DeepfakeEvent` is what people act on: when, where, how sure, and the evidence files that
``stream/event_store.py`` writes (a snapshot and a clip).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dfstream.stream.records import ScoreRecord
from dfstream.stream.sources.base import display_name

EventState = Literal["start", "update", "end"]
"""start goes out first, before any file is written; update follows once the snapshot and clip exist."""

MISSING_FRAMES_TO_END = 5
"""Frames of its source without a record of the track after which an open event ends (the tracker
ends tracks after the same number of missed frames)."""


@dataclass
class _Running:
    peak: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, value: float | None) -> None:
        if value is None:
            return
        self.peak = max(self.peak, value)
        self.total += value
        self.count += 1

    def to_dict(self) -> dict[str, float] | None:
        return None if self.count == 0 else {"peak": round(self.peak, 6), "mean": round(self.total / self.count, 6)}


@dataclass
class DeepfakeEvent:
    """One stretch of a track labelled fake. Mutable while open; ``to_dict`` is what outputs get."""

    id: str
    source: str
    track_id: int
    start_ts: float
    start_frame: int
    bbox: tuple[int, int, int, int]
    end_ts: float | None = None
    end_frame: int | None = None
    frames: int = 0
    fused: _Running = field(default_factory=_Running)
    frame_model: _Running = field(default_factory=_Running)
    clip_model: _Running = field(default_factory=_Running)
    snapshot: str | None = None
    """File name of the JPEG, relative to the events folder."""
    clip: str | None = None
    """File name of the MP4, relative to the events folder (set once the post-roll is written)."""
    clip_status: str = "none"
    """none (no clips), recording, done, or the reason clips stopped (e.g. disk full)."""
    end_reason: str | None = None
    """Why an event ended other than its label leaving fake (``interrupted``: the run was killed)."""

    def add(self, record: ScoreRecord) -> None:
        self.frames += 1
        self.fused.add(record.score)
        self.frame_model.add(record.score_frame)
        self.clip_model.add(record.score_clip)
        self.bbox = record.bbox

    def to_dict(self, state: EventState) -> dict[str, Any]:
        fused = self.fused.to_dict() or {"peak": 0.0, "mean": 0.0}
        return {
            "type": "event",
            "state": state,
            "id": self.id,
            "source": self.source,
            "track_id": self.track_id,
            "start_ts": round(self.start_ts, 6),
            "end_ts": None if self.end_ts is None else round(self.end_ts, 6),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "frames": self.frames,
            "peak_score": fused["peak"],
            "mean_score": fused["mean"],
            "scores": {"frame_model": self.frame_model.to_dict(), "clip_model": self.clip_model.to_dict()},
            "bbox": list(self.bbox),
            "snapshot": self.snapshot,
            "clip": self.clip,
            "clip_status": self.clip_status,
            **({} if self.end_reason is None else {"end_reason": self.end_reason}),
        }


def _slug(source: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", display_name(source)).strip("-")[:40] or "source"


@dataclass(frozen=True)
class Transition:
    state: EventState
    event: DeepfakeEvent


class EventDetector:
    """Records of one frame in, events that start or end on that frame out (one source at a time)."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, int], DeepfakeEvent] = {}
        self._missing: dict[tuple[str, int], int] = {}
        self._count = 0

    def update(self, source: str, frame_id: int, ts: float, records: Sequence[ScoreRecord]) -> list[Transition]:
        out: list[Transition] = []
        seen = set()
        for r in records:
            key = (r.source, r.track_id)
            seen.add(key)
            event = self.open.get(key)
            if r.label == "fake":
                if event is None:
                    event = self.open[key] = self._new(r)
                    event.add(r)
                    out.append(Transition("start", event))
                else:
                    event.add(r)
                self._missing[key] = 0
            elif event is not None:
                out.append(self._end(key, r.frame_id, r.ts))
        for key in [k for k in self.open if k[0] == source and k not in seen]:
            self._missing[key] = self._missing.get(key, 0) + 1
            if self._missing[key] >= MISSING_FRAMES_TO_END:
                out.append(self._end(key, frame_id, ts))
        return out

    def end_source(self, source: str, frame_id: int, ts: float) -> list[Transition]:
        """The source ended: every event still open on it ends now."""
        return [self._end(key, frame_id, ts) for key in [k for k in self.open if k[0] == source]]

    def _new(self, r: ScoreRecord) -> DeepfakeEvent:
        self._count += 1
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(r.ts))
        event_id = f"{stamp}-{_slug(r.source)}-t{r.track_id}-{self._count}"
        return DeepfakeEvent(event_id, r.source, r.track_id, r.ts, r.frame_id, r.bbox)

    def _end(self, key: tuple[str, int], frame_id: int, ts: float) -> Transition:
        event = self.open.pop(key)
        self._missing.pop(key, None)
        event.end_ts, event.end_frame = ts, frame_id
        return Transition("end", event)
