"""Who gets into ``dfstream serve``, probed on loopback against the real server: the token as a cookie,
Host and Origin rules, security headers, half-open offers, short tokens."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiortc import RTCConfiguration, RTCPeerConnection

from dfstream.stream import server as server_module
from dfstream.stream.model_set import ModelSet
from dfstream.stream.web_security import SECURITY_HEADERS, TOKEN_COOKIE
from tests.rtsp import free_port
from tests.test_server import Client, LoopCamera, _start, _until, loopback_candidates  # noqa: F401

TOKEN = "a-token-long-enough-0123"


@pytest.fixture(scope="module")
def models(stream_models: Path) -> ModelSet:
    return ModelSet.load(stream_models, "cpu")


def test_the_token_in_the_url_becomes_a_cookie_that_the_pages_own_requests_carry(models: ModelSet) -> None:
    async def main() -> dict[str, Any]:
        runner, srv = await _start(models, token=TOKEN)
        got: dict[str, Any] = {}
        try:
            # unsafe=True: aiohttp's jar, unlike a browser's, keeps no cookies of a bare IP address otherwise
            async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session:
                async with session.get(f"{srv.base}/?token={TOKEN}") as res:
                    got["page"] = res.status
                    got["cookie"] = res.headers.get("Set-Cookie", "")
                async with session.get(f"{srv.base}/app.js") as res:  # as <script src="app.js"> asks: no token
                    got["script"] = res.status
            async with ClientSession() as fresh:
                async with fresh.get(f"{srv.base}/app.js") as res:
                    got["no_cookie"] = res.status
                async with fresh.get(f"{srv.base}/feeds", headers={"Authorization": TOKEN}) as res:
                    got["bare"] = res.status
                async with fresh.get(f"{srv.base}/feeds", headers={"Authorization": f"Bearer {TOKEN}"}) as res:
                    got["bearer"] = res.status
                wrong = {"Authorization": "Bearer wrong-token-0123456"}
                async with fresh.get(f"{srv.base}/feeds", headers=wrong) as res:
                    got["wrong"] = res.status
        finally:
            await runner.cleanup()
        return got

    got = asyncio.run(main())
    assert got["page"] == 200 and got["script"] == 200
    assert f"{TOKEN_COOKIE}={TOKEN}" in got["cookie"]
    assert "HttpOnly" in got["cookie"] and "SameSite=Strict" in got["cookie"]
    assert (got["no_cookie"], got["bare"], got["bearer"], got["wrong"]) == (401, 401, 200, 401)


def test_foreign_hosts_and_origins_are_refused_and_headers_are_sent(models: ModelSet) -> None:
    async def main() -> dict[str, Any]:
        runner, srv = await _start(models)
        port = srv.base.rsplit(":", 1)[1]
        got: dict[str, Any] = {}
        try:
            async with ClientSession() as session:
                async with session.get(f"{srv.base}/") as res:
                    got["own"] = res.status
                    got["headers"] = {k: res.headers.get(k) for k in SECURITY_HEADERS}
                async with session.get(f"{srv.base}/feeds", headers={"Host": f"localhost:{port}"}) as res:
                    got["localhost"] = res.status
                # DNS rebinding: a remote name that resolves to 127.0.0.1 reaches the server with its own Host
                async with session.get(f"{srv.base}/events", headers={"Host": f"rebind.example:{port}"}) as res:
                    got["rebound"] = res.status
                async with session.get(f"{srv.base}/metrics", headers={"Origin": "http://evil.example"}) as res:
                    got["foreign_origin"] = res.status
                async with session.post(f"{srv.base}/offer", data=b"{}", headers={
                        "Origin": "http://evil.example", "Content-Type": "text/plain"}) as res:
                    got["foreign_post"] = res.status
                async with session.get(f"{srv.base}/feeds", headers={"Origin": f"http://127.0.0.1:{port}"}) as res:
                    got["same_origin"] = res.status
        finally:
            await runner.cleanup()
        return got

    got = asyncio.run(main())
    assert got["own"] == 200 and got["localhost"] == 200 and got["same_origin"] == 200
    assert got["rebound"] == 403 and got["foreign_origin"] == 403 and got["foreign_post"] == 403
    assert got["headers"] == SECURITY_HEADERS


def _without_candidates(sdp: str) -> str:
    """An offer whose ICE can never complete (no candidates, no end-of-candidates): a half-open peer."""
    return "".join(line for line in sdp.splitlines(keepends=True)
                   if not line.startswith(("a=candidate", "a=end-of-candidates")))


def test_half_open_offers_are_capped_and_closed_and_the_server_stays_usable(
        models: ModelSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "PENDING_TIMEOUT_S", 1.0)

    async def main() -> tuple[list[int], int, int]:
        runner, srv = await _start(models, max_peers=4)
        statuses: list[int] = []
        pcs = []
        try:
            async with ClientSession() as session:
                for _ in range(5):
                    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
                    pcs.append(pc)
                    pc.addTrack(LoopCamera())
                    await pc.setLocalDescription(await pc.createOffer())
                    offer = {"sdp": _without_candidates(pc.localDescription.sdp), "type": "offer"}
                    async with session.post(f"{srv.base}/offer", json=offer) as res:
                        statuses.append(res.status)
                held = len(srv.server.peers)
                assert await _until(lambda: not srv.server.peers, 10.0)  # closed once their time is up
                client = Client()
                try:
                    answer = await client.connect(srv.base, session)
                    assert answer["status"] == 200
                    assert await _until(lambda: len(client.scores()) >= 3, 60.0)
                    scored = len(client.scores())
                finally:
                    await client.close()
        finally:
            for pc in pcs:
                await pc.close()
            await runner.cleanup()
        return statuses, held, scored

    statuses, held, scored = asyncio.run(main())
    assert statuses == [200, 200, 429, 429, 429]  # two still connecting per client address
    assert held == 2 and scored >= 3


def test_a_deeply_nested_offer_is_a_400_not_a_traceback(models: ModelSet, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[int, str]:
        runner, srv = await _start(models)
        try:
            async with ClientSession() as session:
                body = b"[" * 30_000 + b"]" * 30_000  # 60 KB, under the size limit
                async with session.post(f"{srv.base}/offer", data=body,
                                        headers={"Content-Type": "application/json"}) as res:
                    return res.status, (await res.json())["error"]
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == (400, "body is nested too deeply")
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def test_a_short_token_refuses_to_start() -> None:
    done = subprocess.run([sys.executable, "-m", "dfstream.cli", "serve", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "DFSTREAM_TOKEN": "short"})
    assert done.returncode == 2 and "at least 16 characters" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_no_webhook_secret_reaches_logs_records_or_the_summary(stream_models: Path, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Slack- and Discord-style webhook URLs are their own secret (in the path and the query)."""
    from dfstream.stream.contract.paths import SAMPLE_CLIP
    from dfstream.stream.local_run import run_stream
    from dfstream.stream.outputs.settings import WebhookConfig
    from dfstream.stream.run_config import RunConfig

    secret = "T0SECRET/B0SECRET/xoxSECRETPATH"
    hook = WebhookConfig(url=f"http://127.0.0.1:9/services/{secret}?token=QUERYSECRET", retries=0, timeout_s=0.2)
    out = tmp_path / "s.jsonl"
    with caplog.at_level(logging.DEBUG):
        summary, _ = run_stream(RunConfig(sources=(str(SAMPLE_CLIP),), models_dir=stream_models, out=str(out),
                                          window=False, threshold=0.05, webhooks=(hook,)))
    assert summary.outputs["webhook 0 127.0.0.1"]["dropped"] >= 1  # events were posted (and refused)
    for text in (caplog.text, out.read_text(), json.dumps(summary.to_dict()), json.dumps(summary.outputs)):
        assert "SECRET" not in text
