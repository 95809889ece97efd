"""Webhooks against real HTTP receivers (aiohttp): one that works, one that answers 500, one that hangs.
Scores keep flowing while they misbehave; retries and drops are counted; the signature checks out."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.local_run import run_stream
from dfstream.stream.outputs.settings import WebhookConfig
from dfstream.stream.outputs.webhook import SIGNATURE_HEADER
from dfstream.stream.run_config import RunConfig
from tests.rtsp import free_port

SECRET = "webhook-test-secret"


def verify(header: str, body: bytes, secret: str, now: float, tolerance_s: float = 300.0) -> bool:
    """The receiver's check as the README gives it, written here from that text, not from dfstream's code."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(now - int(fields["t"])) <= tolerance_s


class Receivers:
    """Three aiohttp servers on loopback in one background event loop."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failing_calls = 0
        self.hanging_calls = 0
        self.redirect_calls = 0
        self.ports = {name: free_port() for name in ("good", "failing", "hanging", "redirect")}
        self._loop = asyncio.new_event_loop()
        self._runners: list[web.AppRunner] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}/hook"

    async def _good(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def _failing(self, request: web.Request) -> web.Response:
        self.failing_calls += 1
        return web.Response(status=500)

    async def _hanging(self, request: web.Request) -> web.Response:
        self.hanging_calls += 1
        await asyncio.sleep(30)
        return web.Response(status=200)

    async def _redirect(self, request: web.Request) -> web.Response:
        self.redirect_calls += 1
        return web.Response(status=307, headers={"Location": "ftp://127.0.0.1/elsewhere"})

    async def _start(self) -> None:
        for name, handler in (("good", self._good), ("failing", self._failing), ("hanging", self._hanging),
                              ("redirect", self._redirect)):
            app = web.Application()
            app.router.add_post("/hook", handler)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.ports[name]).start()
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]  # the hanging handlers
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self) -> Receivers:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    with Receivers() as r:
        yield r


def test_events_reach_the_good_receiver_signed_while_the_bad_ones_are_retried_and_dropped(
    stream_models: Path, tmp_path: Path, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DFSTREAM_TEST_WEBHOOK_SECRET", SECRET)
    hooks = (
        WebhookConfig(url=receivers.url("good"), secret_env="DFSTREAM_TEST_WEBHOOK_SECRET"),
        WebhookConfig(url=receivers.url("failing"), retries=2, timeout_s=1.0),
        WebhookConfig(url=receivers.url("hanging"), retries=1, timeout_s=0.5),
        WebhookConfig(url=receivers.url("redirect"), retries=2, timeout_s=1.0),
    )
    out = tmp_path / "s.jsonl"
    cfg = RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(out), window=False,
                    threshold=0.05, webhooks=hooks)
    summary, errors = run_stream(cfg)
    assert errors == []
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sum(x["type"] == "score" for x in lines) == 240  # scoring never waited for the receivers
    events = [x for x in lines if x["type"] == "event"]
    assert events, "threshold 0.05 must flag the sample clip"
    # the good receiver got every event record, in order, each signed over its exact body
    bodies = [json.loads(body) for _, body in receivers.received]
    assert [(b["id"], b["state"]) for b in bodies] == [(e["id"], e["state"]) for e in events]
    for headers, body in receivers.received:
        stamp = int(headers[SIGNATURE_HEADER].split(",")[0].removeprefix("t="))
        assert verify(headers[SIGNATURE_HEADER], body, SECRET, now=stamp + 5)
        assert not verify(headers[SIGNATURE_HEADER], body, SECRET, now=stamp + 301)  # a replay, 5 min later
        assert not verify(headers[SIGNATURE_HEADER], body + b" ", SECRET, now=stamp)
        assert headers["X-Dfstream-Event"] in ("start", "end") and headers["Content-Type"] == "application/json"
    stats = summary.outputs
    assert not any(receivers.url(n) in name for name in stats for n in receivers.ports)  # labels: index and host
    good, failing, hanging, redirect = (stats[f"webhook {i} 127.0.0.1"] for i in range(4))
    assert good == {"sent": len(events), "retried": 0, "dropped": 0, "queued": 0}
    assert failing["sent"] == 0 and failing["dropped"] == len(events) and failing["retried"] == 2 * len(events)
    assert receivers.failing_calls == 3 * len(events)
    assert hanging["sent"] == 0 and hanging["dropped"] == len(events) and hanging["retried"] >= 1
    assert receivers.hanging_calls >= 1
    # a redirect is a failed delivery, not retried and not followed (to ftp:// or anywhere)
    assert redirect["sent"] == 0 and redirect["dropped"] == len(events) and redirect["retried"] == 0
    assert receivers.redirect_calls == len(events)


def test_a_missing_secret_is_refused_at_start(stream_models: Path) -> None:
    from dfstream.stream.contract.exceptions import InputPathError
    from dfstream.stream.outputs.webhook import WebhookSink

    with pytest.raises(InputPathError, match=r"environment variable DFSTREAM_UNSET_SECRET .* is not set"):
        WebhookSink(WebhookConfig(url="http://127.0.0.1:9/x", secret_env="DFSTREAM_UNSET_SECRET"))


def test_a_receiver_that_drips_its_answer_is_cut_at_the_timeout() -> None:
    """A socket timeout bounds each read; this receiver sends a byte every 0.2 s for ever, so only a
    deadline on the whole request ends the delivery."""
    import socket

    from dfstream.stream.outputs.webhook import WebhookSink

    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 100:
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    sink = WebhookSink(WebhookConfig(url=f"http://127.0.0.1:{port}/hook", retries=0, timeout_s=1.0))
    started = time.monotonic()
    try:
        sink.event({"type": "event", "state": "start", "id": "e1"})
        while time.monotonic() - started < 20 and sink.stats()["dropped"] == 0:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        sink.close()
        server.close()
    assert sink.stats()["dropped"] == 1 and sink.stats()["sent"] == 0
    assert elapsed < 3.0  # about the 1 s timeout, not the 40 s the drip would take
