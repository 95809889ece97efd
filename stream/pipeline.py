"""The streaming detector: frames of all sources → faces → tracks → batched models → scores → sinks.

One consumer loop serves every source of the process. Each tick takes the frames that are ready
(one per source at most), finds faces per stream (in parallel threads when there are several
streams; MediaPipe and ONNX Runtime release the GIL), and then runs model A and the clip encoder
once over the crops of all tracks of all streams, and the clip head once over all full buffers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from dfstream.stream.buffer import ClipBuffer
from dfstream.stream.contract.types import FaceObs, Frame
from dfstream.stream.crops import crop_face
from dfstream.stream.dispatch import SinkDispatcher
from dfstream.stream.explain import attention_of
from dfstream.stream.face_models import FaceJob, FaceModelScores, FaceModelStage
from dfstream.stream.faces import FaceStage
from dfstream.stream.frame_lane import FrameLane, apply_frame_scores
from dfstream.stream.model_set import StreamModels, elapsed_ms
from dfstream.stream.prometheus import LiveStats
from dfstream.stream.records import LabelEvent, ScoreRecord, status_dict
from dfstream.stream.scheduler import DeadlineScheduler, runs_frame_model
from dfstream.stream.scoring import ScoringConfig, TrackScorer, Vote
from dfstream.stream.settings import CameraSettings, PipelineOptions
from dfstream.stream.sinks import SinkSet
from dfstream.stream.sources import SourceError, ThreadedSource
from dfstream.stream.sources.base import Policy, display_name
from dfstream.stream.stage_timer import TickTimer
from dfstream.stream.summary import FrameRates, RunSummary, stop_reason
from dfstream.stream.tracking import Tracker

log = logging.getLogger(__name__)


@dataclass
class TrackState:
    scorer: TrackScorer
    buffer: ClipBuffer = field(default_factory=ClipBuffer)
    p_frame: float | None = None
    p_clip: float | None = None
    attention_map: np.ndarray | None = None
    """Model A's latest attention map of this track (``--explain``)."""
    frames: int = 0
    every: int = 1
    """Model A's stride in effect for this track's latest frame."""
    models: FaceModelScores = field(default_factory=FaceModelScores)
    """The imported models' latest scores of this track."""


class StreamState:
    """What one source needs across frames: its face graph, tracker, settings and per-track state."""

    def __init__(self, source: ThreadedSource, settings: CameraSettings, scoring: ScoringConfig) -> None:
        self.source = source
        self.stride = settings.stride
        """A fixed model-A stride for this source, or None: the deadline scheduler's."""
        self.scoring = scoring
        live = source.policy is Policy.DROP_OLDEST  # a file read as fast as scored looks for faces on every frame
        self.faces = FaceStage(max_faces=settings.max_faces, video=True,
                               detect_every=settings.detect_every if live else 1)
        self.tracker = Tracker()
        self.tracks: dict[int, TrackState] = {}
        self.active = True


@dataclass
class _Work:
    """One face of one frame on its way through the batched stages."""

    stream: StreamState
    frame: Frame
    face: FaceObs
    track_id: int
    state: TrackState
    run_frame_model: bool
    crop_frame: np.ndarray | None = None
    crop_clip: np.ndarray | None = None


@dataclass(frozen=True)
class _Prepared:
    """A tick after its faces, tracks and crops, before its models."""

    batch: Sequence[tuple[StreamState, Frame]]
    work: list[_Work]
    t_pick: int
    face_ms: dict[int, float]
    crop_ms: float


class Pipeline:
    def __init__(
        self,
        models: StreamModels,
        sources: Sequence[ThreadedSource],
        sinks: SinkSet,
        options: PipelineOptions,
        face_models: FaceModelStage | None = None,
    ) -> None:
        self.models = models
        self.options = options
        self.face_models = face_models or FaceModelStage(())
        """Imported models scored beside the bundled ones (``dfstream import``; see stream/face_models.py)."""
        weights = options.weights
        self._votes = [(m.name, m.threshold, weights.get(m.name, 1.0)) for m in self.face_models.models]
        if options.explain and not models.explains:
            log.warning("--explain: model A has no attention output (export it again with this version); "
                        "nothing to draw")
        self.explain = options.explain and models.explains
        """Records carry model A's attention grid and the views draw it."""
        self._pending: list[ThreadedSource] = []
        self._pending_lock = threading.Lock()
        self.sinks = sinks
        self.scheduler = DeadlineScheduler(fixed=options.defaults.stride)
        """Model A's stride for sources without their own: fixed by ``--stride`` or kept within the frame budget."""
        frame_threshold, clip_threshold = models.thresholds
        self.scoring = ScoringConfig(frame_threshold=frame_threshold, clip_threshold=clip_threshold,
                                     bundled_weight=weights.get("bundled", 1.0))
        """Sources without settings of their own score with this; each camera's threshold replaces its decision."""
        if options.defaults.threshold is not None:
            self.scoring = replace(self.scoring, decision=options.defaults.threshold)
        self.streams = [self._stream_state(s) for s in sources]
        self.summary = RunSummary(provider=models.provider)
        self.wake = threading.Event()
        for s in sources:
            s.set_wake(self.wake)
        workers = 4 if options.serve else min(4, len(self.streams))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dfstream-faces-pool") if (
            workers > 1) else None
        self._headers = FrameRates()
        self.sinks.add(self.summary.metrics)  # label state per source and event counts
        self.dispatch = SinkDispatcher(sinks, self.summary)
        """Sinks run on their own thread; scoring only queues (see stream/dispatch.py)."""
        self.summary.metrics.bind(self._live_stats)
        self._lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dfstream-faces") if (
            options.overlap) else None
        """Finds the faces of frame N+1 while the models score frame N (``overlap``)."""
        self._prepared: _Prepared | None = None
        self._a_lane = FrameLane(models.score_crops) if options.frame_lane else None
        """Runs model A beside the tick for live sources, so its time never delays a frame (``frame_lane``)."""

    def _stream_state(self, source: ThreadedSource) -> StreamState:
        own = self.options.camera(source.name)
        scoring = self.scoring if own.threshold is None else replace(self.scoring, decision=own.threshold)
        return StreamState(source, own, scoring)

    def add_source(self, source: ThreadedSource) -> None:
        """Join a running pipeline (thread-safe); the loop starts the source at its next tick."""
        source.set_wake(self.wake)
        with self._pending_lock:
            self._pending.append(source)
        self.wake.set()

    def _admit_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for source in pending:
            self.streams.append(self._stream_state(source))
            source.start()

    def _retire(self, st: StreamState) -> None:
        """A source that ended: record its counters, free its face graph and tracks."""
        st.active = False
        st.source.close()
        self.summary.sources[st.source.name].dropped = st.source.dropped
        self._drain_statuses(st)
        st.faces.close()
        st.tracks.clear()
        if self.options.serve:  # a peer that left a server takes its counts and series with it: they must not pile up
            self.summary.forget(st.source.name)
            self._headers.forget(st.source.name)

    # -- one tick -------------------------------------------------------------------------------
    def process(self, batch: Sequence[tuple[StreamState, Frame]]) -> list[tuple[Frame, list[ScoreRecord]]]:
        """Score one frame from each of several streams together; returns records per frame."""
        return self._score(self._prepare(batch))

    def _prepare(self, batch: Sequence[tuple[StreamState, Frame]]) -> _Prepared:
        """Faces, tracks and crops of one tick: the part that can run while the models score the last."""
        t_pick = time.perf_counter_ns()
        face_lists, face_ms = self._find_faces(batch)
        work: list[_Work] = []
        for (stream, frame), faces in zip(batch, face_lists, strict=True):
            pairs, ended = stream.tracker.update(faces)
            for track in ended:
                stream.tracks.pop(track.track_id, None)
            for track, face in pairs:
                state = stream.tracks.get(track.track_id)
                if state is None:
                    state = stream.tracks[track.track_id] = TrackState(scorer=TrackScorer(stream.scoring))
                every = stream.stride or self.scheduler.every
                run_a = runs_frame_model(state.frames, track.track_id, every)
                state.every = every
                work.append(_Work(stream, frame, face, track.track_id, state, run_a))
                state.frames += 1

        t = time.perf_counter()
        a_size, b_size = self.models.frame_input.size, self.models.clip_input.size
        for w in work:
            w.crop_clip = crop_face(w.frame.image, w.face.bbox, b_size)
            if w.run_frame_model:
                w.crop_frame = crop_face(w.frame.image, w.face.bbox, a_size)
        return _Prepared(batch, work, t_pick, face_ms, elapsed_ms(t))

    def _score(self, prepared: _Prepared) -> list[tuple[Frame, list[ScoreRecord]]]:
        """Models, clip head, scoring and records of a prepared tick."""
        batch, work, t_pick, face_ms, crop_ms = (prepared.batch, prepared.work, prepared.t_pick, prepared.face_ms,
                                                  prepared.crop_ms)
        timer = TickTimer()
        timer.set("crop", crop_ms)
        a_work = [w for w in work if w.crop_frame is not None]
        lane = self._a_lane if self._a_lane is not None and self._budget(batch) is not None else None
        lane_ms = 0.0
        if lane is not None:  # live and paced sources: model A off the frames' path
            lane_ms = lane.collect()
            lane.submit([w.state for w in a_work], [w.crop_frame for w in a_work], self.explain)  # type: ignore[misc]
            a_work = []  # not in this tick; if the lane was busy they keep their last score until their next turn
        crops = self.models.score_crops([w.crop_frame for w in a_work],  # type: ignore[misc]
                                        [w.crop_clip for w in work], explain=self.explain)  # type: ignore[misc]
        apply_frame_scores([w.state for w in a_work], crops)
        for w, emb in zip(work, crops.embeddings, strict=True):
            w.state.buffer.push(emb, w.face.lmk5)
        timer.set("frame_cnn", lane_ms if lane is not None else crops.frame_ms)
        timer.set("clip_encoder", crops.encoder_ms)
        if self.face_models:  # on their lanes whenever a source has a deadline, even with --no-frame-lane
            live = self._budget(batch) is not None
            jobs = [FaceJob(w.state.models, w.frame.image, w.face, w.frame.t_capture_ns) for w in work
                    if live or w.run_frame_model]
            self.face_models.tick(jobs, live=live)

        with timer.stage("clip_head"):
            ready = [w for w in work if w.state.buffer.full]
            for w, p in zip(ready, self.models.clip_scores([w.state.buffer.clip() for w in ready]), strict=True):
                w.state.p_clip = float(p)
        with timer.stage("scoring"):
            scores = [w.state.scorer.update(w.state.p_frame, w.state.p_clip, self._votes_of(w.state)) for w in work]
        now = time.perf_counter_ns()
        out: dict[int, list[ScoreRecord]] = {id(f): [] for _, f in batch}
        for w, s in zip(work, scores, strict=True):
            x, y, bw, bh = w.face.bbox
            stage = timer.record(decode=w.frame.decode_ms, queue=(t_pick - w.frame.t_capture_ns) / 1e6,
                                 faces=face_ms[id(w.frame)], total=(now - w.frame.t_capture_ns) / 1e6)
            out[id(w.frame)].append(
                ScoreRecord(
                    ts=w.frame.ts,
                    source=w.frame.source,
                    frame_id=w.frame.frame_id,
                    track_id=w.track_id,
                    bbox=(round(x), round(y), max(1, round(bw)), max(1, round(bh))),
                    score_frame=w.state.p_frame,
                    score_clip=w.state.p_clip,
                    score=s.score,
                    label=s.label,
                    latency_ms=stage,
                    frame_model_every=w.state.every,
                    attention=None if w.state.attention_map is None else attention_of(w.face.bbox,
                                                                                      w.state.attention_map),
                    models=w.state.models.snapshot(self.face_models.names, now) if self.face_models else None,
                )
            )
            if s.changed:
                event = LabelEvent(w.frame.ts, w.frame.source, w.frame.frame_id, w.track_id, s.previous, s.label,
                                   s.score)
                self.dispatch.event(event.to_dict())
        return [(f, out[id(f)]) for _, f in batch]

    def _votes_of(self, state: TrackState) -> list[Vote]:
        latest = state.models.latest
        return [Vote(latest[name].p if name in latest else None, threshold, weight)
                for name, threshold, weight in self._votes]

    def _find_faces(self, batch: Sequence[tuple[StreamState, Frame]]) -> tuple[list[list[FaceObs]], dict[int, float]]:
        def one(item: tuple[StreamState, Frame]) -> tuple[list[FaceObs], float]:
            t0 = time.perf_counter()
            faces = item[0].faces(item[1].image)
            return faces, elapsed_ms(t0)

        results = list(self._pool.map(one, batch)) if self._pool and len(batch) > 1 else [one(b) for b in batch]
        return [r[0] for r in results], {id(f): r[1] for (_, f), r in zip(batch, results, strict=True)}

    # -- the loop -------------------------------------------------------------------------------
    def run(self, duration_s: float | None = None, stop: threading.Event | None = None) -> RunSummary:
        """Until every source ends, ``duration_s`` passes or ``stop`` is set; sinks are closed after."""
        stop = stop or threading.Event()
        start = time.perf_counter()
        for st in self.streams:
            st.source.start()
        try:
            self._loop(start, duration_s, stop)
        finally:
            self.summary.elapsed_s = time.perf_counter() - start
            self._admit_pending()
            for st in self.streams:
                if st.active:
                    self._retire(st)
            if self._pool:
                self._pool.shutdown(wait=True)
            if self._lane:
                self._lane.shutdown(wait=True)
            if self._a_lane:
                self._a_lane.close()
            self.face_models.close()
            self.dispatch.close()
            self.sinks.close()
        return self.summary

    def _loop(self, start: float, duration_s: float | None, stop: threading.Event) -> None:
        self._ticks(start, duration_s, stop)
        if self._prepared is not None:  # a tick whose faces were found: score it before closing
            self._finish(self._prepared)
            self._prepared = None

    def _ticks(self, start: float, duration_s: float | None, stop: threading.Event) -> None:
        """With the faces lane, the faces of the next ready frames are found while the models score
        the previous ones; a frame is never held back waiting for the next one to arrive."""
        while True:
            reason = stop_reason(stop, start, duration_s)
            if reason is not None:
                self.summary.stopped_by = reason
                return
            if self.sinks.quit_requested:
                self.summary.stopped_by = "window closed"
                return
            self.wake.clear()
            self._admit_pending()
            batch = self._ready_frames()
            if self.options.serve:
                self.streams = [st for st in self.streams if st.active]
            elif not any(st.active for st in self.streams) and self._prepared is None:
                return
            t_tick = time.perf_counter()
            if self._prepared is None:
                if not batch:
                    self.wake.wait(0.05)
                    continue
                self._prepared = self._prepare(batch)
                if self._lane is not None:
                    continue  # look for a next frame to overlap with before scoring this one
                batch = []
            prepared = self._prepared
            upcoming = self._lane.submit(self._prepare, batch) if batch and self._lane is not None else None
            self._finish(prepared)
            self._prepared = upcoming.result() if upcoming is not None else None
            every = self.scheduler.update(time.perf_counter() - t_tick, self._budget(prepared.batch))
            self.summary.metrics.frame_model_every.set(every)

    def _finish(self, prepared: _Prepared) -> None:
        for (stream, _), (frame, records) in zip(prepared.batch, self._score(prepared), strict=True):
            if self.options.serve and not stream.active:
                continue  # a peer that left while its frame was prepared (overlap) took its counts and series along
            self.summary.add_frame(frame.source, records)
            complete = stream.source.policy is Policy.WAIT  # files read as fast as scored lose nothing
            self.dispatch.write(frame, records, self._header(frame), wait=complete)

    @staticmethod
    def _budget(batch: Sequence[tuple[StreamState, Frame]]) -> float | None:
        """The tightest frame period among the batch's sources that drop frames when behind (None: no deadline)."""
        periods = [1.0 / (st.source.fps or 30.0) for st, _ in batch if st.source.policy is Policy.DROP_OLDEST]
        return min(periods) if periods else None

    def _ready_frames(self) -> list[tuple[StreamState, Frame]]:
        batch: list[tuple[StreamState, Frame]] = []
        for st in self.streams:
            if not st.active:
                continue
            self._drain_statuses(st)
            try:
                frame = st.source.poll()
            except SourceError as exc:
                log.error("%s", exc)
                self.summary.sources[st.source.name].error = str(exc)
                self._retire(st)
                continue
            if frame is not None:
                batch.append((st, frame))
            elif st.source.exhausted:
                self._retire(st)
        return batch

    def _drain_statuses(self, st: StreamState) -> None:
        while st.source.statuses:
            status = st.source.statuses.popleft()
            self.summary.sources[st.source.name].outages += 1
            self.dispatch.event(status_dict(status))

    def _header(self, frame: Frame) -> str:
        fps = self._headers.tick(frame.source)
        name = display_name(frame.source)
        return f"{name}  {fps:.0f} fps" if fps else name

    def decision_points(self) -> dict[str, object]:
        """Where each score turns: the fused score's label threshold (``--threshold``) and each model's
        own threshold on its P(fake), as the page shows them."""
        models = {"frame_model": self.scoring.frame_threshold, "clip_model": self.scoring.clip_threshold}
        models |= {name: threshold for name, threshold, _ in self._votes}
        return {"threshold": self.scoring.decision, "models": models}

    def _live_stats(self) -> LiveStats:
        sources = dict(list(self.summary.sources.items()))
        dropped = {name: st.dropped for name, st in sources.items()}
        for stream in list(self.streams):
            if stream.active:
                dropped[stream.source.name] = stream.source.dropped
        return LiveStats(
            frames={name: st.frames for name, st in sources.items()},
            dropped=dropped,
            provider=self.models.provider,
            outputs={**self.sinks.stats(), self.dispatch.name: self.dispatch.stats()},
        )

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.summary.sources.values() if s.error]

