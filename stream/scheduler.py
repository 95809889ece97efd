"""The deadline scheduler: model A runs on every k-th frame of a track, k chosen to keep up.

A live or paced source brings a frame every 1/fps seconds (the budget). When a tick (faces, crops
and every model for the frames of all streams) takes longer than the budget, frames pile up and
are dropped at the source; model A, the most expensive stage, is the one that can skip frames
without harm: the clip encoder still runs on every frame, so clip buffers stay complete, and a
track's last model A score is kept between its runs. The same k holds for every track of every
stream (so none starves), and tracks run model A on different frames (``phase``) to spread load.
Files read as fast as they are scored have no deadline: k stays 1. ``--stride`` fixes k.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_EVERY = 4
"""Model A at least on every 4th frame: its score stays at most ~130 ms old at 30 fps."""


def runs_frame_model(frames_seen: int, phase: int, every: int) -> bool:
    """Whether a track runs model A on its next frame: always its first, then every ``every``-th,
    offset by ``phase`` (the track id) so that tracks take turns."""
    return frames_seen == 0 or (frames_seen + phase) % every == 0


@dataclass
class DeadlineScheduler:
    fixed: int | None = None
    """``--stride``: k never changes."""
    max_every: int = MAX_EVERY
    high: float = 0.95
    """Raise k when the smoothed tick time passes this share of the budget."""
    low: float = 0.6
    """Lower k when it falls under this share."""
    settle_ticks: int = 15
    """Ticks to wait after a change before the next one (the smoothed time must catch up)."""
    alpha: float = 0.2
    every: int = 1
    _ema: float | None = None
    _since: int = 0

    def __post_init__(self) -> None:
        if self.fixed is not None:
            self.every = self.fixed

    def update(self, tick_s: float, budget_s: float | None) -> int:
        """Feed one tick's duration and the tightest frame period among its live sources; returns k."""
        if self.fixed is not None:
            return self.every
        if budget_s is None:
            self.every, self._ema, self._since = 1, None, 0
            return 1
        self._ema = tick_s if self._ema is None else self.alpha * tick_s + (1 - self.alpha) * self._ema
        self._since += 1
        if self._since < self.settle_ticks:
            return self.every
        if self._ema > self.high * budget_s and self.every < self.max_every:
            self.every += 1
            self._since = 0
        elif self._ema < self.low * budget_s and self.every > 1:
            self.every -= 1
            self._since = 0
        return self.every
