"""POST each event (start and end) to a URL: retries with backoff, a timeout, an HMAC-SHA256 signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from dfstream import __version__
from dfstream.config import WebhookConfig
from dfstream.exceptions import InputPathError
from dfstream.stream.records import ScoreRecord
from dfstream.stream.sources import redact
from dfstream.stream.types import Frame

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dfstream-Signature"
"""``sha256=<hex HMAC-SHA256 of the raw body>`` with the configured secret (as GitHub's webhooks)."""
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    """A sink that sends ``event`` records; scores are not sent (that is what MQTT state is for)."""

    def __init__(self, cfg: WebhookConfig) -> None:
        self.cfg = cfg
        self.name = f"webhook {redact(cfg.url)}"
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
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self.retried += 1
                if self._stop.wait(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)]):
                    break
            try:
                request = urllib.request.Request(self.cfg.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                    if 200 <= response.status < 300:
                        self.sent += 1
                        return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                log.debug("%s: attempt %d failed: %s", self.name, attempt + 1, exc)
        self.dropped += 1
        log.warning("%s: event dropped after %d attempts", self.name, self.cfg.retries + 1)
