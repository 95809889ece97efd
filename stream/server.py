"""``dfstream serve``: a browser sends its webcam over WebRTC and gets each face's score back live.

aiohttp serves the page (from memory: request paths never touch the file system) and takes SDP
offers; aiortc receives each peer's video. Every peer becomes a ``PushSource`` of one shared
``Pipeline`` running in its own thread, so all peers' faces go through the models together, and
each score record returns on the peer's data channel (the JSON-lines schema).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import av
import numpy as np
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from prometheus_client import CONTENT_TYPE_LATEST

from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.contract.types import Frame
from dfstream.stream.event_store import EventSink
from dfstream.stream.face_models import FaceModelStage
from dfstream.stream.local_run import connect_events
from dfstream.stream.model_set import ModelSet
from dfstream.stream.pipeline import Pipeline
from dfstream.stream.prometheus import Reading
from dfstream.stream.records import ScoreRecord, to_json
from dfstream.stream.scoring import DECISION
from dfstream.stream.settings import PipelineOptions
from dfstream.stream.sinks import Sink, SinkSet
from dfstream.stream.sources import redact
from dfstream.stream.sources.base import ThreadedSource, display_name
from dfstream.stream.sources.peer import PushSource
from dfstream.stream.web_events import EventsView, RecentEvents
from dfstream.stream.web_grid import FeedGrid, LatestAnnotated
from dfstream.stream.web_security import check_token, security_middleware

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 64 * 1024
PENDING_TIMEOUT_S = 15.0
"""A peer that has not connected by then is closed: an offer that never completes ICE holds no slot."""
PENDING_PER_CLIENT = 2
"""Offers still connecting from one client address; more get 429."""
TOKEN_ENV = "DFSTREAM_TOKEN"
PAGES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "application/javascript")}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Anything but loopback needs a token: the page streams people's faces."""
    if not is_loopback(host) and not token:
        raise DfstreamError(f"refusing to listen on {host} without a token: pass --token or set {TOKEN_ENV}")
    check_token(token)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_peers: int = 4
    ice_servers: tuple[str, ...] = ()
    """STUN/TURN URLs; none by default, so nothing outside is ever contacted."""


class ChannelSink:
    """Routes each record to the data channel of the peer whose source produced it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._senders: dict[str, dict[str, Callable[[str], None]]] = {}
        self._lock = threading.Lock()

    def attach(self, source: str, peer_id: str, send: Callable[[str], None]) -> None:
        with self._lock:
            self._senders.setdefault(source, {})[peer_id] = send

    def detach(self, source: str, peer_id: str) -> None:
        with self._lock:
            self._senders.get(source, {}).pop(peer_id, None)

    def _send(self, source: str, text: str) -> None:
        with self._lock:
            sends = list(self._senders.get(source, {}).values())
        for send in sends:
            self._loop.call_soon_threadsafe(send, text)

    def write(self, frame: Frame, records: Sequence[ScoreRecord], header: str) -> None:
        for r in records:
            self._send(frame.source, to_json(r))

    def event(self, data: dict[str, Any]) -> None:
        if "source" in data:
            self._send(str(data["source"]), to_json(data))

    def close(self) -> None:
        return None


class FeedTrack(VideoStreamTrack):  # type: ignore[misc]
    """Sends a feed's newest annotated picture at 30 fps (a black frame until the first one)."""

    def __init__(self, pictures: LatestAnnotated, source: str) -> None:
        super().__init__()
        self._pictures = pictures
        self._source = source

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        picture = self._pictures.get(self._source)
        if picture is None:
            picture = np.zeros((480, 640, 3), np.uint8)
        h, w = picture.shape[:2]
        frame = av.VideoFrame.from_ndarray(picture[: h - h % 2, : w - w % 2], format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Peer:
    peer_id: str
    pc: RTCPeerConnection
    source: PushSource | None
    feed: str | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    remote: str = ""
    connected: bool = False
    """ICE and DTLS completed: only then does the peer take one of ``max_peers``."""

    @property
    def scored_source(self) -> str:
        """The source whose records this peer receives: the feed it watches or its own camera."""
        return self.feed or (self.source.name if self.source else "")


class Server:
    def __init__(self, models: ModelSet, options: ServeOptions, pipeline: PipelineOptions,
                 feeds: Sequence[ThreadedSource] = (), outputs: Sequence[Sink] = (),
                 face_models: FaceModelStage | None = None) -> None:
        self.models = models
        self.face_models = face_models
        """Imported detectors scored beside the bundled models, each on its own lane."""
        self.outputs = list(outputs)
        """Event store, webhooks, MQTT, records file: fed like the page, closed with the server."""
        self.pipeline_options = pipeline
        """Every feed's and peer's settings, resolved once from the config (``serve`` mode on)."""
        self.recent = RecentEvents()
        store = next((o for o in self.outputs if isinstance(o, EventSink)), None)
        self.events = EventsView(store.folder if store else None, self.recent)
        self.feeds = {f.name: f for f in feeds}
        """Server-side sources (RTSP cameras, files) a page can watch annotated."""
        self.feed_labels = feed_labels(list(self.feeds))
        """What the page lists and offers name (a file's name, a camera's redacted URL) → the source."""
        self.pictures = LatestAnnotated(list(self.feeds))
        decision = {f: pipeline.camera(f).threshold for f in self.feeds}
        self.grid = FeedGrid(self.feed_labels, self.pictures,
                             {f: DECISION if t is None else t for f, t in decision.items()})
        """The page's camera grid: each feed's newest picture and most alarming label."""
        self.options = options
        self.peers: dict[str, Peer] = {}
        self.pipeline: Pipeline | None = None
        self.channels: ChannelSink | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        web_dir = resources.files("dfstream.stream") / "web"
        self._pages = {path: (web_dir.joinpath(name).read_bytes(), ctype) for path, (name, ctype) in PAGES.items()}

    # -- lifecycle ------------------------------------------------------------------------------
    async def on_startup(self, app: web.Application) -> None:
        self.channels = ChannelSink(asyncio.get_running_loop())
        sinks = SinkSet([*self.outputs, self.channels, self.pictures, self.recent])
        connect_events(sinks)
        self.pipeline = Pipeline(self.models, list(self.feeds.values()), sinks, self.pipeline_options,
                                 face_models=self.face_models)
        self.pipeline.summary.metrics.registry.register(Reading(
            "dfstream_active_peers", "WebRTC peers connected now.",
            lambda: sum(p.connected for p in list(self.peers.values()))))
        self._thread = threading.Thread(target=self.pipeline.run, kwargs={"stop": self._stop}, daemon=True,
                                        name="pipeline")
        self._thread.start()

    async def on_shutdown(self, app: web.Application) -> None:
        for peer_id in list(self.peers):
            await self.close_peer(peer_id)
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10.0)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_OFFER_BYTES, middlewares=[security_middleware(self.options.token)])
        app.router.add_get("/", self.page)
        app.router.add_get("/app.js", self.page)
        app.router.add_post("/offer", self.offer)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/feeds", self.list_feeds)
        app.router.add_get("/settings", self.page_settings)
        app.router.add_get("/grid", self.grid.list)
        app.router.add_get("/grid/{index}.jpg", self.grid.picture)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/events", self.events.list)
        app.router.add_get("/events/{name}", self.events.file)
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    # -- endpoints ------------------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.Response:
        body, ctype = self._pages[request.path]
        return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "no-store"})

    async def healthz(self, request: web.Request) -> web.Response:
        alive = self._thread is not None and self._thread.is_alive()
        return web.json_response({"status": "ok" if alive else "pipeline stopped", "peers": len(self.peers),
                                  "provider": self.models.provider}, status=200 if alive else 503)

    async def list_feeds(self, request: web.Request) -> web.Response:
        return web.json_response({"feeds": list(self.feed_labels)})

    async def page_settings(self, request: web.Request) -> web.Response:
        """What the page needs to show every score against its own decision point."""
        assert self.pipeline is not None
        return web.json_response(self.pipeline.decision_points())

    async def metrics(self, request: web.Request) -> web.Response:
        assert self.pipeline is not None
        body = self.pipeline.summary.metrics.text()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.json_response({"error": "an offer is sent as application/json"}, status=415)
        try:
            body = await request.json()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": f"offer larger than {MAX_OFFER_BYTES} bytes"}, status=413)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        except RecursionError:  # deeply nested arrays within the size limit
            return web.json_response({"error": "body is nested too deeply"}, status=400)
        problem = _offer_problem(body, list(self.feed_labels))
        if problem:
            return web.json_response({"error": problem}, status=400)
        if sum(p.connected for p in self.peers.values()) >= self.options.max_peers:
            return web.json_response({"error": f"server is full ({self.options.max_peers} peers)"}, status=503)
        remote = request.remote or ""
        pending = [p for p in self.peers.values() if not p.connected]
        if sum(p.remote == remote for p in pending) >= PENDING_PER_CLIENT or len(pending) >= self.options.max_peers:
            return web.json_response({"error": "too many offers still connecting; try again shortly"}, status=429)
        try:
            feed = body.get("feed")
            answer, peer_id = await self._connect(body["sdp"], self.feed_labels[feed] if feed else None, remote)
        except ValueError as exc:
            return web.json_response({"error": f"SDP offer rejected: {exc}"}, status=400)
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "peer": peer_id})

    # -- peers ----------------------------------------------------------------------------------
    async def _connect(self, sdp: str, feed: str | None, remote: str = "") -> tuple[RTCSessionDescription, str]:
        """A peer either sends its camera (``feed`` None) or watches a server-side feed."""
        assert self.pipeline is not None and self.channels is not None
        ice = [RTCIceServer(urls=u) for u in self.options.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        peer_id = uuid.uuid4().hex[:8]
        source = None if feed else PushSource(f"peer:{peer_id}")
        peer = Peer(peer_id, pc, source, feed, remote=remote)
        self.peers[peer_id] = peer
        channels = self.channels
        if feed:
            pc.addTrack(FeedTrack(self.pictures, feed))

        @pc.on("datachannel")
        def on_datachannel(channel: Any) -> None:
            def send(text: str) -> None:
                if channel.readyState == "open":
                    channel.send(text)

            channels.attach(peer.scored_source, peer_id, send)

        @pc.on("track")
        def on_track(track: Any) -> None:
            if track.kind == "video" and source is not None:
                peer.tasks.append(asyncio.ensure_future(self._read_video(peer, track)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not peer.connected:
                peer.connected = True
                log.info("peer %s connected (%d active)", peer_id, sum(p.connected for p in self.peers.values()))
            if pc.connectionState in ("failed", "closed", "disconnected"):
                await self.close_peer(peer_id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
        except Exception as exc:  # aiortc raises ValueError and others for offers it cannot use
            await self.close_peer(peer_id)
            raise ValueError(str(exc) or type(exc).__name__) from None
        if source is not None:
            self.pipeline.add_source(source)
        log.info("peer %s answered; waiting for it to connect", peer_id)
        peer.tasks.append(asyncio.ensure_future(self._drop_if_pending(peer_id)))
        return pc.localDescription, peer_id

    async def _drop_if_pending(self, peer_id: str) -> None:
        await asyncio.sleep(PENDING_TIMEOUT_S)
        peer = self.peers.get(peer_id)
        if peer is not None and not peer.connected:
            log.info("peer %s never connected within %.0f s; closed", peer_id, PENDING_TIMEOUT_S)
            await self.close_peer(peer_id)

    async def _read_video(self, peer: Peer, track: Any) -> None:
        assert peer.source is not None
        try:
            while True:
                frame = await track.recv()
                t0 = time.perf_counter()
                image = frame.to_ndarray(format="bgr24")
                peer.source.push(image, (time.perf_counter() - t0) * 1000.0)
        except Exception:  # MediaStreamError when the peer leaves; any decode error ends this peer only
            pass
        finally:
            await self.close_peer(peer.peer_id)

    async def close_peer(self, peer_id: str) -> None:
        peer = self.peers.pop(peer_id, None)
        if peer is None:
            return
        if peer.source is not None:
            peer.source.end()
        if self.channels is not None:
            self.channels.detach(peer.scored_source, peer_id)
        for task in peer.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await peer.pc.close()
        log.info("peer %s left (%d active)", peer_id, len(self.peers))


def feed_labels(names: Sequence[str]) -> dict[str, str]:
    """Each feed's label for people (no server path, no password), made unique: label → source name."""
    out: dict[str, str] = {}
    for name in names:
        base = redact(display_name(name))
        label, k = base, 2
        while label in out:
            label, k = f"{base} ({k})", k + 1
        out[label] = name
    return out


def _offer_problem(body: object, feeds: Sequence[str]) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object with 'sdp' and 'type'"
    if body.get("type") != "offer":
        return "field 'type' must be 'offer'"
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        return "field 'sdp' must be an SDP offer (starting with 'v=0')"
    if "m=video" not in sdp:
        return "the offer has no video (m=video)"
    if "a=fingerprint:" not in sdp:
        return "the offer has no DTLS fingerprint (a=fingerprint)"
    feed = body.get("feed")
    if feed is not None and feed not in feeds:
        return f"unknown feed {feed!r}; this server has {list(feeds) or 'none'}"
    unknown = set(body) - {"sdp", "type", "feed"}
    if unknown:
        return f"unknown fields {sorted(unknown)}"
    return None


class PathOnlyAccessLogger(AbstractAccessLogger):  # type: ignore[misc]
    """Access lines without query strings: the page's token travels as ``?token=`` and is never logged."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %d %.1f ms', request.remote, request.method, request.path, response.status,
                         time * 1000.0)


def serve(models: ModelSet, options: ServeOptions, pipeline: PipelineOptions,
          feeds: Sequence[ThreadedSource] = (), outputs: Sequence[Sink] = (),
          face_models: FaceModelStage | None = None) -> None:
    check_bind(options.host, options.token)
    server = Server(models, options, pipeline, feeds, outputs, face_models)
    for feed in feeds:
        log.info("source %s", feed.describe())
    log.info("open http://%s:%d/%s", options.host, options.port, "?token=<the token>" if options.token else "")
    web.run_app(server.app(), host=options.host, port=options.port, print=None, access_log_class=PathOnlyAccessLogger)


__all__ = ["MAX_OFFER_BYTES", "PENDING_TIMEOUT_S", "TOKEN_ENV", "ServeOptions", "Server", "check_bind", "is_loopback",
           "serve"]
