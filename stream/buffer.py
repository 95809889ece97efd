"""Per-track ring buffer of the last CLIP_LEN frames, holding what model B's head needs.

It caches the clip encoder's output (not the crop) per frame, so a new frame costs one encoder
pass and one head pass; re-encoding 16 crops per frame would cost 16×.
"""

from __future__ import annotations

import numpy as np

from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM, HEAD_FEATURES


class ClipBuffer:
    """Preallocated ``CLIP_LEN`` slots of [embedding ⊕ lmk5]; O(1) push, oldest overwritten."""

    def __init__(self, length: int = CLIP_LEN) -> None:
        self.length = length
        self._rows = np.zeros((length, HEAD_FEATURES), dtype=np.float32)
        self._next = 0
        self.count = 0
        """Frames pushed since the track began (not capped)."""

    def push(self, embedding: np.ndarray, lmk5: np.ndarray) -> None:
        row = self._rows[self._next]
        row[:EMBED_DIM] = embedding
        row[EMBED_DIM:] = lmk5
        self._next = (self._next + 1) % self.length
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count >= self.length

    def clip(self) -> np.ndarray:
        """(length, HEAD_FEATURES) rows, oldest first; only meaningful once ``full``."""
        return np.concatenate((self._rows[self._next :], self._rows[: self._next]))
