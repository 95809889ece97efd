"""The page's camera grid: every server-side feed's newest annotated picture and its label at a glance.

The pictures are drawn only when somebody looks (a watching peer's video track, or a grid tile
asking for its JPEG), and each is drawn once per frame however many look."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from dfstream.stream.contract.types import Frame
from dfstream.stream.overlay import annotate
from dfstream.stream.records import ScoreRecord, most_alarming

TILE_WIDTH = 480
"""A grid tile's JPEG is at most this wide: a wall of cameras stays light on the network."""
TILE_QUALITY = 70


class LatestAnnotated:
    """A sink keeping the newest frame and records of each server-side feed, and its most alarming label."""

    def __init__(self, feeds: Sequence[str]) -> None:
        self._feeds = set(feeds)
        self._latest: dict[str, tuple[Frame, Sequence[ScoreRecord], str, float]] = {}
        self._drawn: dict[str, tuple[Frame, np.ndarray]] = {}
        self._lock = threading.Lock()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        if frame.source in self._feeds:
            with self._lock:
                self._latest[frame.source] = (frame, records, header, time.monotonic())

    def get(self, source: str) -> np.ndarray | None:
        with self._lock:
            latest = self._latest.get(source)
            drawn = self._drawn.get(source)
        if latest is None:
            return None
        frame, records, header, _ = latest
        if drawn is not None and drawn[0] is frame:
            return drawn[1]  # several viewers of one feed share one drawing per frame
        picture = annotate(frame.image, records, header)
        with self._lock:
            self._drawn[source] = (frame, picture)
        return picture

    def state(self, source: str) -> dict[str, Any]:
        """The feed's most alarming face on its newest frame ('none' without a face), and how old that is."""
        with self._lock:
            latest = self._latest.get(source)
        if latest is None:
            return {"label": "none", "score": None, "faces": 0, "age_s": None}
        _, records, _, at = latest
        worst = most_alarming(records)
        return {"label": worst.label if worst else "none", "score": None if worst is None else round(worst.score, 3),
                "faces": len(records), "age_s": round(time.monotonic() - at, 2)}

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        return None


class FeedGrid:
    """``GET /grid``: each feed's label, score and threshold; ``GET /grid/<i>.jpg``: its newest picture."""

    def __init__(self, labels: Mapping[str, str], pictures: LatestAnnotated,
                 thresholds: Mapping[str, float]) -> None:
        self._labels = list(labels.items())
        """(what the page calls the feed, its source name), in the order the page lists them."""
        self._pictures = pictures
        self._thresholds = thresholds

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"feeds": [
            {"feed": label, "threshold": self._thresholds[source], **self._pictures.state(source)}
            for label, source in self._labels
        ]})

    async def picture(self, request: web.Request) -> web.Response:
        index = request.match_info["index"]
        if not index.isdigit() or int(index) >= len(self._labels):
            raise web.HTTPNotFound(text="no such feed")
        picture = self._pictures.get(self._labels[int(index)][1])
        if picture is None:
            raise web.HTTPNotFound(text="no frame yet")
        body = await _jpeg(picture)
        return web.Response(body=body, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


async def _jpeg(picture: np.ndarray) -> bytes:
    import asyncio

    def encode() -> bytes:
        h, w = picture.shape[:2]
        small = picture if w <= TILE_WIDTH else cv2.resize(picture, (TILE_WIDTH, round(h * TILE_WIDTH / w)),
                                                           interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, TILE_QUALITY])
        return buf.tobytes() if ok else b""

    return await asyncio.get_running_loop().run_in_executor(None, encode)
