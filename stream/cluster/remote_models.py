"""The pipeline's models on a camera worker: a shared scorer for model A and the encoder, the clip
head here, and this worker's own CPU when the scorer is unreachable (until it answers again)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np

from dfstream.stream.cluster.scorer import ScorerInfo
from dfstream.stream.contract.exceptions import MetadataError
from dfstream.stream.crops import InputSpec
from dfstream.stream.model_set import CropScores, ModelSet, head_scores
from dfstream.stream.ort_sessions import OrtModel

log = logging.getLogger(__name__)

StatusCallback = Callable[[str, float, "float | None"], None]
"""(reason, down_at, up_at or None): the worker turns it into a status record."""


def _stack(crops: Sequence[np.ndarray], size: int) -> np.ndarray:
    return np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)


class RemoteModels:
    """Implements ``StreamModels`` (stream/model_set.py) over a Ray scorer handle."""

    def __init__(self, scorer: Any | None, head: OrtModel, fallback: Callable[[], ModelSet], on_status: StatusCallback,
                 call_timeout_s: float = 10.0, retry_s: float = 2.0, info_timeout_s: float = 30.0) -> None:
        """Asks the scorer what its models want; when it does not answer, starts on this CPU."""
        import ray

        self._ray = ray
        self._state = threading.Lock()
        """Model A's lane and the frames' thread both call: one of them at a time falls back or comes back."""
        self._make_fallback = fallback
        self._fallback: ModelSet | None = None
        self._on_status = on_status
        self._down_at: float | None = None
        self._probe: Any = None
        self._probe_at = 0.0
        try:
            if scorer is None:
                raise ray.exceptions.RayError("no scorer is left in the cluster")
            info = cast(ScorerInfo, ray.get(scorer.info.remote(), timeout=info_timeout_s))
        except ray.exceptions.RayError as exc:
            self._fall_back(exc)
            assert self._fallback is not None
            info = ScorerInfo.of(self._fallback)
        if head.metadata.source_sha256 != info.source_sha256:
            raise MetadataError(f"{head.path}: the clip head comes from another checkpoint than the scorer's "
                                "clip encoder (metadata field 'dfstream.source_sha256' differs)")
        self.scorer = scorer
        self.info = info
        self.head = head
        self.call_timeout_s = call_timeout_s
        self.retry_s = retry_s

    @property
    def frame_input(self) -> InputSpec:
        return self.info.frame_input

    @property
    def clip_input(self) -> InputSpec:
        return self.info.clip_input

    @property
    def provider(self) -> str:
        return self.info.provider

    @property
    def explains(self) -> bool:
        return self.info.explains

    @property
    def thresholds(self) -> tuple[float, float]:
        return self.info.thresholds

    @property
    def on_fallback(self) -> bool:
        return self._down_at is not None

    def score_crops(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
                    explain: bool = False) -> CropScores:
        with self._state:
            local = self._down_at is not None and not self._scorer_back()
        if local:
            return self._local(frame_crops, clip_crops, explain)
        assert self.scorer is not None  # _scorer_back is False without one
        ref = self.scorer.score.remote(_stack(frame_crops, self.frame_input.size),
                                       _stack(clip_crops, self.clip_input.size), explain)
        try:
            result: CropScores = self._ray.get(ref, timeout=self.call_timeout_s)
        except self._ray.exceptions.RayError as exc:  # dead, restarting, timed out or failed
            with self._state:
                if self._down_at is None:  # the other thread may have fallen back already
                    self._fall_back(exc)
            return self._local(frame_crops, clip_crops, explain)
        return result

    def _fall_back(self, exc: Exception) -> None:
        self._down_at = time.time()
        self._probe, self._probe_at = None, time.monotonic()
        reason = f"scorer unreachable ({type(exc).__name__}): scoring on this worker's CPU"
        log.warning("%s", reason)
        self._on_status(reason, self._down_at, None)
        if self._fallback is None:
            self._fallback = self._make_fallback()

    def _local(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
               explain: bool) -> CropScores:
        assert self._fallback is not None  # loaded by _fall_back, which always comes first
        return self._fallback.score_crops(frame_crops, clip_crops, explain)

    def _scorer_back(self) -> bool:
        """Ping the scorer without blocking the stream: one ping in flight, one every ``retry_s``."""
        now = time.monotonic()
        if self.scorer is None:
            return False
        if self._probe is None:
            if now - self._probe_at < self.retry_s:
                return False
            self._probe, self._probe_at = self.scorer.stats.remote(), now
        ready, _ = self._ray.wait([self._probe], timeout=0)
        if not ready:
            return False
        probe, self._probe = self._probe, None
        try:
            self._ray.get(probe)
        except self._ray.exceptions.RayError:
            return False
        down_at, self._down_at = self._down_at, None
        reason = "scorer back: scoring on the shared scorer again"
        log.info("%s", reason)
        self._on_status(reason, down_at or time.time(), time.time())
        return True

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return head_scores(self.head, clips)
