"""``--explain``: model A's attention map as a grid in records and a heatmap over the face.

The map covers model A's input crop, the square that :func:`stream.crops.square_around` puts
around the face, so each record carries that square (``box``) beside the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dfstream.stream.contract.types import ATTENTION_GRID
from dfstream.stream.crops import square_around

HEAT_ALPHA = 0.55
"""Weight of the heatmap at the face's most attended cell; it fades with the attention (drawn
relative to that cell, so a face whose attention is low everywhere still shows where it peaks)."""


@dataclass(frozen=True, eq=False)
class Attention:
    """Where model A looked on one face: ``grid`` (ATTENTION_GRID², 0..1) over the square ``box``."""

    box: tuple[int, int, int, int]
    """x, y, side, side in frame pixels (may reach past the frame's edges)."""
    grid: np.ndarray

    def to_dict(self) -> dict[str, object]:
        return {"box": list(self.box), "grid": np.round(self.grid.astype(np.float64), 2).tolist()}


def attention_of(face_bbox: tuple[float, float, float, float], attention_map: np.ndarray) -> Attention:
    """The grid of one (H, W) map, area-averaged, and the crop square it covers."""
    cx, cy, side = square_around(face_bbox)
    grid = cv2.resize(np.asarray(attention_map, np.float32), (ATTENTION_GRID, ATTENTION_GRID),
                      interpolation=cv2.INTER_AREA)
    box = (round(cx - side / 2), round(cy - side / 2), max(1, round(side)), max(1, round(side)))
    return Attention(box, np.clip(grid, 0.0, 1.0))


def draw_heatmap(image: np.ndarray, attention: Attention) -> None:
    """Blend a JET heatmap of the grid into ``image`` (BGR, in place) over the part of the box inside it.

    Colour and weight are made at grid resolution and only then resized, and OpenCV blends, so a face
    costs well under a millisecond (measured in benchmarks/RESULTS.md)."""
    x, y, side, _ = attention.box
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + side), min(h, y + side)
    if x1 <= x0 or y1 <= y0:
        return
    grid = attention.grid / max(float(attention.grid.max()), 1e-6)
    colour = cv2.applyColorMap((grid * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (HEAT_ALPHA * np.sqrt(grid)).astype(np.float32)
    inside = (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))
    heat = np.ascontiguousarray(cv2.resize(colour, (side, side), interpolation=cv2.INTER_LINEAR)[inside])
    weight = np.ascontiguousarray(cv2.resize(alpha, (side, side), interpolation=cv2.INTER_LINEAR)[inside])
    image[y0:y1, x0:x1] = cv2.blendLinear(image[y0:y1, x0:x1], heat, 1.0 - weight, weight)
