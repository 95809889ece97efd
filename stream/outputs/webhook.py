"""POST each event (start and end) to a URL: retries with backoff, a timeout, an HMAC-SHA256 signature."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

from dfstream import __version__
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.types import Frame
from dfstream.stream.outputs.settings import WebhookConfig
from dfstream.stream.records import ScoreRecord

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dfstream-Signature"
"""``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with the configured secret (as Stripe's
webhooks): the timestamp is signed with the body, so a receiver can refuse a replayed old request."""
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST ``body`` and return the status, within ``timeout_s`` for the whole request: a socket
    timeout bounds each read only, so a receiver that drips its answer a byte at a time would hold
    the delivery thread for as long as it likes; a timer closes the socket at the deadline instead.
    Redirects are answers like any other (http.client never follows them)."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "", parts.port, timeout=timeout_s)
    watchdog = threading.Timer(timeout_s, _abort, (conn,))
    watchdog.daemon = True
    watchdog.start()
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("POST", target, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        watchdog.cancel()
        conn.close()


def _abort(conn: http.client.HTTPConnection) -> None:
    if conn.sock is not None:
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)


def webhook_label(url: str, index: int) -> str:
    """How logs and metrics name a webhook: its index and host only (the URL's path is often its secret)."""
    return f"webhook {index} {urllib.parse.urlsplit(url).hostname or '?'}"


class WebhookSink:
    """A sink that sends ``event`` records; scores are not sent (that is what MQTT state is for)."""

    def __init__(self, cfg: WebhookConfig, index: int = 0) -> None:
        self.cfg = cfg
        self.name = webhook_label(cfg.url, index)
        self._secret: bytes | None = None
        if cfg.secret_env is not None:
            value = os.environ.get(cfg.secret_env)
            if not value:
                raise InputPathError(f"{self.name}: environment variable {cfg.secret_env} (its secret) is not set")
            self._secret = value.encode()
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(cfg.queue)
        """(state, body) of each event waiting to be sent."""
        self._stop = threading.Event()
        self.sent = self.retried = self.dropped = 0
        self._thread = threading.Thread(target=self._main, name="webhook", daemon=True)
        self._thread.start()

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        return None

    def event(self, data: dict[str, Any]) -> None:
        if data.get("type") != "event":
            return
        try:
            self._queue.put_nowait((str(data.get("state", "")), json.dumps(data, separators=(",", ":")).encode()))
        except queue.Full:
            self.dropped += 1

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "retried": self.retried, "dropped": self.dropped, "queued": self._queue.qsize()}

    def close(self) -> None:
        """Send what is queued for up to one full round of attempts, then give up (counted)."""
        self._queue.put(None)
        budget = (self.cfg.retries + 1) * self.cfg.timeout_s + sum(BACKOFF_S[: self.cfg.retries]) + 1.0
        self._thread.join(timeout=budget)
        self._stop.set()
        self._thread.join(timeout=self.cfg.timeout_s + 1.0)
        while True:
            try:
                if self._queue.get_nowait() is not None:
                    self.dropped += 1
            except queue.Empty:
                break

    def _main(self) -> None:
        while not self._stop.is_set() and (item := self._queue.get()) is not None:
            self._deliver(*item)

    def _deliver(self, state: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"dfstream/{__version__}",
                   "X-Dfstream-Event": state}
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.retried += 1
                if self._stop.wait(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]):
                    break
            if self._secret is not None:  # signed at each attempt: its timestamp is when it was sent
                headers[SIGNATURE_HEADER] = signature(self._secret, body, int(time.time()))
            try:
                status = post(self.cfg.url, body, headers, self.cfg.timeout_s)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                log.debug("%s: attempt %d failed: %s", self.name, attempt + 1, exc)
                continue
            if 200 <= status < 300:
                self.sent += 1
                return
            if 300 <= status < 400:
                self.dropped += 1
                log.warning("%s: answered %d (a redirect); redirects are not followed, event dropped",
                            self.name, status)
                return
            log.debug("%s: attempt %d answered %d", self.name, attempt + 1, status)
        self.dropped += 1
        log.warning("%s: event dropped after %d attempts", self.name, self.cfg.retries + 1)
