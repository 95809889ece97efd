"""The page's events list: ``GET /events`` (newest first) and ``GET /events/<file>`` (snapshot or clip).

With an events folder the list is its index, so it survives restarts; without one, the events of
this run kept in memory. Files are served only when the index names them (no path from a request
ever reaches the file system).
"""

from __future__ import annotations

import collections
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from dfstream.stream.contract.types import Frame
from dfstream.stream.event_store import read_index
from dfstream.stream.records import ScoreRecord

LISTED = 50
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(jpg|mp4)$")
TYPES = {"jpg": "image/jpeg", "mp4": "video/mp4"}


class RecentEvents:
    """A sink remembering the latest state of the last ``LISTED`` events (for a server without a folder)."""

    def __init__(self) -> None:
        self._events: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        return None

    def event(self, data: dict[str, Any]) -> None:
        if data.get("type") != "event":
            return
        with self._lock:
            self._events[str(data["id"])] = data
            self._events.move_to_end(str(data["id"]))
            while len(self._events) > LISTED:
                self._events.popitem(last=False)

    def latest(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._events.values()))

    def close(self) -> None:
        return None


class EventsView:
    def __init__(self, folder: Path | None, recent: RecentEvents) -> None:
        self.folder = folder
        self.recent = recent

    def latest(self) -> list[dict[str, Any]]:
        return read_index(self.folder)[:LISTED] if self.folder is not None else self.recent.latest()

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"events": self.latest(), "stored": self.folder is not None})

    async def file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = FILE_NAME.match(name)
        if self.folder is None or match is None:
            raise web.HTTPNotFound()
        named = {e.get(k) for e in read_index(self.folder) for k in ("snapshot", "clip")}
        path = self.folder / name
        if name not in named or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": TYPES[match.group(1)], "Cache-Control": "no-store"})
