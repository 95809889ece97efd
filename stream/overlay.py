"""Draw a frame's scores onto it: box and id per face, a score bar, the label's colour."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dfstream.stream.explain import draw_heatmap
from dfstream.stream.records import ScoreRecord

COLOURS = {"real": (80, 200, 60), "fake": (40, 40, 230), "uncertain": (0, 190, 250)}  # BGR
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    cv2.putText(img, text, org, _FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, _FONT, scale, colour, 1, cv2.LINE_AA)


def annotate(image: np.ndarray, records: Sequence[ScoreRecord], header: str = "") -> np.ndarray:
    """A copy of ``image`` with every record drawn; ``header`` goes top-left (fps, source)."""
    out = image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(w, h) / 900.0)
    for r in records:
        if r.attention is not None:
            draw_heatmap(out, r.attention)
    for r in records:
        x, y, bw, bh = r.bbox
        colour = COLOURS[r.label]
        cv2.rectangle(out, (x, y), (x + bw, y + bh), colour, 2)
        _text(out, f"#{r.track_id} {r.label} {r.score:.2f}", (x, max(12, y - 8)), scale, colour)
        bar_y = min(h - 6, y + bh + 6)
        cv2.rectangle(out, (x, bar_y), (x + bw, bar_y + 6), (60, 60, 60), -1)
        cv2.rectangle(out, (x, bar_y), (x + int(bw * r.score), bar_y + 6), colour, -1)
        cv2.line(out, (x + bw // 2, bar_y - 2), (x + bw // 2, bar_y + 8), (255, 255, 255), 1)
        parts = [f"A {r.score_frame:.2f}" if r.score_frame is not None else "A -"]
        parts.append(f"B {r.score_clip:.2f}" if r.score_clip is not None else "B -")
        if r.models is not None:  # imported detectors, by name
            parts += [f"{name} {p:.2f}" if p is not None else f"{name} -" for name, p in r.models[0].items()]
        _text(out, "  ".join(parts), (x, min(h - 4, bar_y + 22)), scale * 0.8, (230, 230, 230))
    if header:
        _text(out, header, (8, int(22 * scale / 0.6)), scale, (255, 255, 255))
    return out
