"""Frames pushed in from elsewhere (a WebRTC peer's video track), with the latest-frame policy.

The server's event loop calls :meth:`PushSource.push` for each decoded frame; a slow pipeline
never builds a queue (one slot, the oldest frame dropped and counted), so delay cannot grow.
"""

from __future__ import annotations

import threading

import numpy as np

from dfstream.stream.sources.base import Policy, ThreadedSource


class PushSource(ThreadedSource):
    def __init__(self, name: str, fps: float = 30.0, wake: threading.Event | None = None) -> None:
        super().__init__(name, Policy.DROP_OLDEST, wake)
        self.fps = fps

    def push(self, image: np.ndarray, decode_ms: float = 0.0) -> bool:
        """Hand one frame over (never blocks); False once the source is closed."""
        if self.stopping:
            return False
        return self._emit(image, decode_ms)

    def end(self) -> None:
        """The peer left: the pipeline retires this source at its next tick."""
        self._stop.set()

    def _produce(self) -> None:
        self._stop.wait()
