"""Stable track ids for faces across frames of one stream.

Each track predicts its next box with constant velocity; detections are matched to
predictions greedily by IoU (best pair first), which keeps ids when two faces cross in the
ordinary case (they keep their motion through the overlap). A track that misses
``max_missed`` frames in a row ends; a face that matches nothing starts a new track, and so a
new clip buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dfstream.stream.contract.types import FaceObs

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: int
    box: Box
    velocity: tuple[float, float] = (0.0, 0.0)
    missed: int = 0
    ended: bool = field(default=False)

    def predicted(self) -> Box:
        x, y, w, h = self.box
        vx, vy = self.velocity
        steps = self.missed + 1
        return x + vx * steps, y + vy * steps, w, h

    def update(self, box: Box) -> None:
        steps = self.missed + 1
        vx = (box[0] - self.box[0]) / steps
        vy = (box[1] - self.box[1]) / steps
        a = 0.5  # smooth velocity so one jittery box does not throw the prediction off
        self.velocity = (a * vx + (1 - a) * self.velocity[0], a * vy + (1 - a) * self.velocity[1])
        self.box = box
        self.missed = 0


class Tracker:
    """Per-stream tracker; ``update`` returns (track, face) pairs for this frame's faces."""

    def __init__(self, max_missed: int = 5, min_iou: float = 0.2) -> None:
        self.max_missed = max_missed
        self.min_iou = min_iou
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(self, faces: list[FaceObs]) -> tuple[list[tuple[Track, FaceObs]], list[Track]]:
        """Match faces to tracks; returns the matched pairs and the tracks that ended now."""
        pairs: list[tuple[Track, FaceObs]] = []
        if self.tracks and faces:
            scores = np.array([[iou(t.predicted(), f.bbox) for f in faces] for t in self.tracks])
            while True:
                ti, fi = np.unravel_index(int(np.argmax(scores)), scores.shape)
                if scores[ti, fi] < self.min_iou:
                    break
                pairs.append((self.tracks[ti], faces[fi]))
                scores[ti, :] = -1.0
                scores[:, fi] = -1.0
        matched_tracks = {id(t) for t, _ in pairs}
        matched_faces = {id(f) for _, f in pairs}
        for track, face in pairs:
            track.update(face.bbox)
        ended: list[Track] = []
        for track in self.tracks:
            if id(track) not in matched_tracks:
                track.missed += 1
                if track.missed > self.max_missed:
                    track.ended = True
                    ended.append(track)
        self.tracks = [t for t in self.tracks if not t.ended]
        for face in faces:
            if id(face) not in matched_faces:
                track = Track(self._next_id, face.bbox)
                self._next_id += 1
                self.tracks.append(track)
                pairs.append((track, face))
        return pairs, ended
