"""The events folder: a snapshot and a clip per event, a JSON-lines index, and retention.

:class:`EventSink` is a sink like the JSON-lines file, but everything it does happens on its own
thread behind a bounded queue: the scoring loop only enqueues (a full queue drops the frame and
counts it). Per source it keeps a ring of recent frames, so a clip starts ``pre_roll_s`` before the
label turned fake, and it keeps recording ``post_roll_s`` after it left fake. Each event's start
and end go to ``emit`` (the sink set: JSON lines, webhooks, MQTT, the web page) and to the index.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from dfstream.stream.contract.exceptions import InputPathError, first_line
from dfstream.stream.contract.types import Frame
from dfstream.stream.events import DeepfakeEvent, EventDetector, EventState, Transition
from dfstream.stream.outputs.settings import EventsConfig
from dfstream.stream.overlay import annotate
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sinks import Mp4Writer

log = logging.getLogger(__name__)

INDEX = "events.jsonl"
Emit = Callable[[dict[str, Any]], None]


QUEUE_FRAMES = 256
"""Frames waiting for the event thread; more are dropped (counted) rather than delaying scoring."""


PRIVATE_FILE, PRIVATE_FOLDER = 0o600, 0o700
"""Snapshots and clips show people's faces: only the user running dfstream reads them, unless
``events.private`` is false."""


def check_events_folder(folder: Path, private: bool = True) -> None:
    """Refuse, before any model loads, an events folder that cannot be made or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if private:
            folder.chmod(PRIVATE_FOLDER)
        probe = folder / ".dfstream-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputPathError(f"events folder {folder}: cannot write ({exc.strerror or first_line(exc)})") from None


@dataclass
class _Clip:
    event: DeepfakeEvent
    writer: Mp4Writer
    post_left: int | None = None
    """Frames still to write after the event ended (None while it is open)."""


class EventSink:
    def __init__(self, config: EventsConfig | None, fps_of: Callable[[str], float], emit: Emit | None = None,
                 interrupted_reason: str = "interrupted") -> None:
        """``config`` None: events are detected and published (records, webhooks, MQTT, the page) but
        nothing is written. Events an earlier run left open in the folder end with ``interrupted_reason``."""
        self.config = config
        self.folder = None if config is None else config.dir
        self._private = config is None or config.private
        self.interrupted: list[dict[str, Any]] = []
        """Events an earlier, killed run left open, closed at start."""
        if self.folder is not None:
            check_events_folder(self.folder, self._private)
            self.interrupted = repair_index(self.folder, interrupted_reason)
            remove_orphans(self.folder)
        self._fps_of = fps_of
        self._emit = emit
        self._queue: queue.Queue[tuple[Frame, Sequence[ScoreRecord]] | None] = queue.Queue(QUEUE_FRAMES)
        self._detector = EventDetector()
        self._rings: dict[str, collections.deque[tuple[Frame, Sequence[ScoreRecord]]]] = {}
        self._clips: dict[str, _Clip] = {}
        self._last: dict[str, Frame] = {}
        self.dropped = 0
        self.events = 0
        self.index_lost = 0
        """Index lines not written (disk full): counted; the index stays whole lines."""
        self.clips_stopped: str | None = None
        self._prune()
        self._thread = threading.Thread(target=self._main, name="events", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return f"events {self.folder or '(not stored)'}"

    def stats(self) -> dict[str, int]:
        return {"events": self.events, "dropped frames": self.dropped, "index lines lost": self.index_lost}

    def attach(self, emit: Emit) -> None:
        self._emit = emit

    # -- the sink interface (scoring thread) ------------------------------------------------------
    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        try:
            self._queue.put_nowait((frame, records))
        except queue.Full:
            self.dropped += 1

    def event(self, data: dict[str, Any]) -> None:
        return None

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    # -- the event thread ---------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                self._frame(*item)
        finally:
            self._finish()

    def _frame(self, frame: Frame, records: Sequence[ScoreRecord]) -> None:
        self._last[frame.source] = frame
        ring = self._rings.get(frame.source)
        if ring is None:
            pre_roll_s = 0.0 if self.config is None else self.config.pre_roll_s
            pre = max(0, math.ceil(pre_roll_s * self._fps_of(frame.source)))
            ring = self._rings[frame.source] = collections.deque(maxlen=pre + 1)
        ring.append((frame, records))
        self._write_clips(frame, records)
        for t in self._detector.update(frame.source, frame.frame_id, frame.ts, records):
            self._transition(t, frame, records)

    def _transition(self, t: Transition, frame: Frame, records: Sequence[ScoreRecord]) -> None:
        event = t.event
        if t.state == "start":
            self.events += 1
            # the alert goes out (and its index line is written) before any picture is encoded
            self._publish(event, "start")
            if self.config is None:
                return
            self._snapshot(event, self.config.dir, frame, records)
            if self.config.clips and self.clips_stopped is None:
                self._start_clip(event, self.config.dir)
            else:
                event.clip_status = self.clips_stopped or "none"
            self._publish(event, "update")
            return
        clip = self._clips.get(event.id)
        if clip is None:
            self._publish(event, "end")
        else:
            post_roll_s = 0.0 if self.config is None else self.config.post_roll_s
            clip.post_left = max(0, math.ceil(post_roll_s * self._fps_of(event.source)))
            if clip.post_left == 0:
                self._close_clip(clip)

    def _snapshot(self, event: DeepfakeEvent, folder: Path, frame: Frame, records: Sequence[ScoreRecord]) -> None:
        name = f"{event.id}.jpg"
        mine = [r for r in records if r.track_id == event.track_id]
        try:
            if not cv2.imwrite(str(folder / name), annotate(frame.image, mine)):
                raise OSError("the JPEG could not be written")
            self._restrict(folder / name)
            event.snapshot = name
        except OSError as exc:
            log.error("event %s: snapshot not written: %s", event.id, first_line(exc))

    def _start_clip(self, event: DeepfakeEvent, folder: Path) -> None:
        name = f"{event.id}.mp4"
        clip = _Clip(event, Mp4Writer(folder / name, self._fps_of(event.source)))
        self._restrict(folder / name)
        event.clip, event.clip_status = name, "recording"
        self._clips[event.id] = clip
        ring = self._rings[event.source]
        for frame, records in ring:  # the pre-roll, then the frame that started the event
            if not self._clip_write(clip, frame, records):
                return

    def _write_clips(self, frame: Frame, records: Sequence[ScoreRecord]) -> None:
        for clip in [c for c in self._clips.values() if c.event.source == frame.source]:
            if not self._clip_write(clip, frame, records):
                continue
            if clip.post_left is not None:
                clip.post_left -= 1
                if clip.post_left <= 0:
                    self._close_clip(clip)

    def _clip_write(self, clip: _Clip, frame: Frame, records: Sequence[ScoreRecord]) -> bool:
        try:
            clip.writer.write(annotate(frame.image, records))
            return True
        except OSError as exc:  # PyAV raises OSError subclasses (e.g. ENOSPC) when the disk is full
            self._stop_clips(f"event clips stopped: {first_line(exc)}")
            return False

    def _close_clip(self, clip: _Clip) -> None:
        self._clips.pop(clip.event.id, None)
        try:
            clip.writer.close()
            self._restrict(clip.writer.path)
            if clip.event.clip_status == "recording":
                clip.event.clip_status = "done"
        except OSError as exc:
            self._stop_clips(f"event clips stopped: {first_line(exc)}")
        if clip.event.end_ts is not None:
            self._publish(clip.event, "end")

    def _stop_clips(self, reason: str) -> None:
        """Disk full or similar: keep detecting and publishing events, stop writing clips, say why once."""
        if self.clips_stopped is None:
            self.clips_stopped = reason
            log.error("%s", reason)
            self._send({"type": "status", "source": "events", "reason": reason, "ts": round(time.time(), 6)})
        for clip in list(self._clips.values()):
            self._clips.pop(clip.event.id, None)
            clip.event.clip_status = reason
            try:
                clip.writer.close()
            except OSError:
                pass
            if clip.event.end_ts is not None:
                self._publish(clip.event, "end")

    def _finish(self) -> None:
        """End of run: open events end on their source's last frame; clips close without more post-roll."""
        for source, frame in self._last.items():
            for t in self._detector.end_source(source, frame.frame_id, frame.ts):
                if t.event.id not in self._clips:
                    self._publish(t.event, "end")
        for clip in list(self._clips.values()):
            self._close_clip(clip)
        self._prune()

    def _publish(self, event: DeepfakeEvent, state: EventState) -> None:
        data = event.to_dict(state)
        self._send(data)  # outputs first: a full disk must not delay or lose the alert
        if self.folder is not None:
            if append_line(self.folder / INDEX, json.dumps(data, separators=(",", ":"))):
                self._restrict(self.folder / INDEX)
            else:
                self.index_lost += 1
                self._stop_clips("event clips stopped: the events index could not be written (disk full?)")
        if state == "end":
            self._prune()

    def _restrict(self, path: Path) -> None:
        if self._private and path.exists():
            path.chmod(PRIVATE_FILE)

    def _prune(self) -> None:
        if self.config is not None:
            prune(self.config.dir, self.config.retention_days, self.config.retention_gb)

    def _send(self, data: dict[str, Any]) -> None:
        if self._emit is not None:
            self._emit(data)


def append_line(path: Path, line: str) -> bool:
    """Append ``line`` whole or not at all: one write of the encoded line; a short or failed write is
    cut back to where the file ended, so the index is always whole lines."""
    data = (line + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            written = os.write(fd, data)
        except OSError:
            written = -1
        if written != len(data):
            os.ftruncate(fd, start)
            return False
        return True
    finally:
        os.close(fd)


def drop_cut_line(path: Path) -> bool:
    """Truncate a last line a crash left without its newline (the next append would glue onto it);
    whether there was one. Lines are written whole by :func:`append_line`, so only the last can be cut."""
    raw = path.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return False
    with path.open("r+b") as fh:
        fh.truncate(raw.rfind(b"\n") + 1)
    return True


def repair_index(folder: Path, reason: str = "interrupted") -> list[dict[str, Any]]:
    """At start: drop a last line cut by a crash (it would glue the next one to it), and close events a
    killed run left open (``end_reason``: ``reason``); returns the events closed."""
    path = folder / INDEX
    if not path.is_file():
        return []
    if drop_cut_line(path):
        log.warning("events: %s ended in a cut line (a crash?); removed it", path)
    closed = []
    for e in read_index(folder):
        if e.get("state") != "end":
            e.update(state="end", end_reason=reason, end_ts=e.get("end_ts") or e.get("start_ts"))
            if e.get("clip_status") == "recording":
                e["clip_status"] = "interrupted"
            append_line(path, json.dumps(e, separators=(",", ":")))
            closed.append(e)
    if closed:
        log.warning("events: %d event(s) left open by an earlier run closed (%s)", len(closed), reason)
    return closed


def remove_orphans(folder: Path) -> list[str]:
    """Snapshots and clips that no index line names (a run killed between writing a file and its
    line, or a pruned index): removed, so retention's size sum holds."""
    named = {e.get(k) for e in _all_lines(folder) for k in ("snapshot", "clip")}
    removed = []
    for p in folder.iterdir():
        if p.is_file() and p.suffix in (".jpg", ".mp4") and p.name not in named:
            p.unlink(missing_ok=True)
            removed.append(p.name)
    if removed:
        log.info("events: removed %d file(s) no event names", len(removed))
    return removed


def _all_lines(folder: Path) -> list[dict[str, Any]]:
    """Every object line of the index, in order (a line cut by a crash is skipped)."""
    path = folder / INDEX
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def read_index(folder: Path) -> list[dict[str, Any]]:
    """The latest line per event id, newest first (what the web page lists)."""
    latest = {d["id"]: d for d in _all_lines(folder) if isinstance(d.get("id"), str)}
    return sorted(latest.values(), key=lambda d: d.get("start_ts") or 0.0, reverse=True)


def prune(folder: Path, days: float, gb: float) -> list[str]:
    """Remove whole events (snapshot, clip, index lines), oldest first, past ``days`` or over ``gb``."""
    events = read_index(folder)[::-1]  # oldest first
    sizes = {e["id"]: sum(_size(folder, e.get(k)) for k in ("snapshot", "clip")) for e in events}
    total = sum(sizes.values())
    cutoff = time.time() - days * 86400.0
    removed: list[str] = []
    for e in events:
        if (e.get("start_ts") or 0.0) >= cutoff and total <= gb * 1e9:
            break
        if e.get("state") != "end" and (e.get("start_ts") or 0.0) >= cutoff:
            break  # an open event is never removed for size
        for key in ("snapshot", "clip"):
            name = e.get(key)
            if isinstance(name, str) and "/" not in name:
                (folder / name).unlink(missing_ok=True)
        total -= sizes[e["id"]]
        removed.append(e["id"])
    if removed:
        _rewrite_index(folder, set(removed))
        log.info("events: removed %d old event(s) (retention %.4g days, %.4g GB)", len(removed), days, gb)
    return removed


def _size(folder: Path, name: object) -> int:
    if not isinstance(name, str) or "/" in name:
        return 0
    path = folder / name
    return path.stat().st_size if path.is_file() else 0


def _rewrite_index(folder: Path, removed: set[str]) -> None:
    path = folder / INDEX
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and data.get("id") not in removed:
            kept.append(line)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.chmod(path.stat().st_mode & 0o777)  # the index keeps its mode
    shutil.move(str(tmp), str(path))
