"""The three graphs the stream runs (model A, clip encoder, clip head), loaded and used batched.

Every call takes the crops of all tracks of all streams that are ready at the same tick, so one
session run serves them all (dynamic batch axis).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from dfstream.stream.contract.exceptions import InputPathError, MetadataError
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE
from dfstream.stream.contract.types import EMBED_DIM
from dfstream.stream.contract.variants import AUTO_PRECISION, STREAM_ROLES
from dfstream.stream.crops import InputSpec, to_model_input
from dfstream.stream.ort_sessions import (
    DEFAULT_ORT,
    LANE_INTRA_THREADS,
    PRECISIONS,
    OrtModel,
    OrtSettings,
    load_model,
    on_gpu,
    read_metadata,
)

log = logging.getLogger(__name__)


def model_files(folder: Path, precision: str = "fp32", gpu: bool = False) -> dict[str, Path]:
    """The graph files the stream needs in ``folder``; one error lists every missing one.

    For fp16 and int8, ``name.<precision>.onnx`` is used where it exists and fp32 elsewhere (the
    clip head stays fp32; a graph whose int8 variant failed its check stays fp32 too); at least one
    variant must exist. ``auto`` takes the int8 variants on a CPU and the fp16 ones on a ``gpu``
    where they exist, without that error. A variant made from another checkpoint than the fp32 graph
    beside it (a model exported again, not yet quantised again) is never run: ``auto`` runs the fp32
    graph and warns, an explicit precision is an error naming the file.
    """
    if precision not in PRECISIONS:
        raise InputPathError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if not folder.is_dir():
        raise InputPathError(f"models folder not found: {folder}")
    files: dict[str, Path] = {role: folder / FILE_NAME_OF_ROLE[role] for role in STREAM_ROLES}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise InputPathError(f"{folder}: missing {', '.join(missing)} (write them with 'dfstream export')")
    wanted = AUTO_PRECISION["gpu" if gpu else "cpu"] if precision == "auto" else precision
    variants = {role: precision_path(path, wanted) for role, path in files.items()}
    hint = "'dfstream quantize'" if wanted == "int8" else "'dfstream export --fp16'"
    if precision not in ("fp32", "auto") and not any(v.is_file() for v in variants.values()):
        raise InputPathError(f"{folder}: no {precision} variant of any model (write them with {hint})")
    chosen = dict(files)
    for role, variant in variants.items():
        if variant == files[role] or not variant.is_file():
            continue
        if _same_checkpoint(variant, files[role]):
            chosen[role] = variant
            continue
        stale = (f"{folder}: {variant.name} was made from another checkpoint than {files[role].name} "
                 "(metadata field 'dfstream.source_sha256' differs)")
        if precision != "auto":
            raise MetadataError(f"{stale}; write it again with {hint}")
        log.warning("%s; running %s instead (write it again with %s)", stale, files[role].name, hint)
    return chosen


def _same_checkpoint(variant: Path, fp32: Path) -> bool:
    """A variant left from an earlier model would run a model other than the one beside it."""
    return read_metadata(variant).source_sha256 == read_metadata(fp32).source_sha256


@dataclass(frozen=True)
class CropScores:
    """Model A and the clip encoder on one tick's crops (batched), with each graph's time."""

    p_frame: np.ndarray
    """(n_a,) calibrated P(fake) from model A."""
    attention: np.ndarray | None
    """(n_a, H, W) model A attention maps when asked for (``--explain``), else None."""
    embeddings: np.ndarray
    """(n_b, EMBED_DIM) clip-encoder features."""
    frame_ms: float
    encoder_ms: float


class StreamModels(Protocol):
    """What the pipeline needs of its models: the ModelSet in one process, or a remote scorer plus
    a local clip head on a Ray camera worker (``stream/cluster``)."""

    @property
    def frame_input(self) -> InputSpec: ...

    @property
    def clip_input(self) -> InputSpec: ...

    @property
    def provider(self) -> str: ...

    @property
    def explains(self) -> bool: ...

    @property
    def thresholds(self) -> tuple[float, float]: ...

    def score_crops(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
                    explain: bool = False) -> CropScores: ...

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray: ...


def elapsed_ms(t0: float) -> float:
    """Milliseconds since ``t0`` (``time.perf_counter()``), for the records' stage latencies."""
    return (time.perf_counter() - t0) * 1000.0


def head_scores(head: OrtModel, clips: Sequence[np.ndarray]) -> np.ndarray:
    """P(fake) from the clip head for (CLIP_LEN, HEAD_FEATURES) rows per track."""
    if not clips:
        return np.zeros(0, np.float32)
    return head.p_fake(np.stack(clips))


@dataclass(frozen=True)
class ModelSet:
    frame: OrtModel
    encoder: OrtModel
    head: OrtModel
    frame_input: InputSpec
    clip_input: InputSpec

    @classmethod
    def load(
        cls, folder: Path, device: str = "auto", precision: str = "fp32", settings: OrtSettings = DEFAULT_ORT,
        frame_on_lane: bool = False,
    ) -> ModelSet:
        """``frame_on_lane``: model A will run on its frame lane (live sources), so on one intra-op thread."""
        fp32 = model_files(folder)  # every graph there, or one error naming each missing one
        # The precision follows where the sessions really run: the head (always fp32) is opened first,
        # so a CUDA build that lands on the CPU takes the CPU's variants, not fp16 graphs on the CPU.
        head = load_model(fp32["clip_head"], "clip_head", device, settings=settings)
        files = model_files(folder, precision, gpu=on_gpu(head))
        if files["clip_head"] != fp32["clip_head"]:
            head = load_model(files["clip_head"], "clip_head", device, settings=settings)
        lane = replace(settings, intra_threads=LANE_INTRA_THREADS) if frame_on_lane else settings
        frame = load_model(files["frame_cnn"], "frame_cnn", device, settings=lane)
        encoder = load_model(files["clip_encoder"], "clip_encoder", device, settings=settings)
        if encoder.metadata.source_sha256 != head.metadata.source_sha256:
            raise MetadataError(
                f"{folder}: clip_encoder.onnx and clip_head.onnx come from different checkpoints "
                "(metadata field 'dfstream.source_sha256' differs)"
            )
        models = cls(frame, encoder, head, InputSpec.of(frame.metadata), InputSpec.of(encoder.metadata))
        for role, text in models.describe().items():
            log.info("model %s: %s", role, text)
        return models

    @property
    def provider(self) -> str:
        return self.frame.provider

    @property
    def thresholds(self) -> tuple[float, float]:
        """Model A's and the clip head's thresholds (metadata, on the calibrated scale)."""
        return self.frame.metadata.threshold, self.head.metadata.threshold

    def score_crops(self, frame_crops: Sequence[np.ndarray], clip_crops: Sequence[np.ndarray],
                    explain: bool = False) -> CropScores:
        """Model A on ``frame_crops`` (with attention maps when ``explain``) and the encoder on ``clip_crops``."""
        t = time.perf_counter()
        maps = None
        if explain:
            p_frame, maps = self.frame_scores_explained(frame_crops)
        else:
            p_frame = self.frame_scores(frame_crops)
        frame_ms = elapsed_ms(t)
        t = time.perf_counter()
        embeddings = self.embed(clip_crops)
        return CropScores(p_frame, maps, embeddings, frame_ms, elapsed_ms(t))

    def frame_scores(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """P(fake) from model A for BGR uint8 crops of side ``frame_input.size``."""
        if not crops:
            return np.zeros(0, np.float32)
        return self.frame.p_fake(to_model_input(crops, self.frame_input))

    @property
    def explains(self) -> bool:
        """Whether model A's graph has the attention output that ``--explain`` draws."""
        return self.frame.metadata.attention_output is not None

    def frame_scores_explained(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """P(fake) from model A and its attention maps (n, H, W) in one run; needs :attr:`explains`."""
        name = self.frame.metadata.attention_output
        if name is None:
            raise ValueError(f"{self.frame.path.name} has no attention output")
        if not crops:
            return np.zeros(0, np.float32), np.zeros((0, 1, 1), np.float32)
        return self.frame.p_fake_and(name, to_model_input(crops, self.frame_input))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, EMBED_DIM) clip-encoder features for BGR uint8 crops of side ``clip_input.size``."""
        if not crops:
            return np.zeros((0, EMBED_DIM), np.float32)
        return self.encoder.run(to_model_input(crops, self.clip_input))

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return head_scores(self.head, clips)

    def describe(self) -> dict[str, str]:
        models = (self.frame, self.encoder, self.head)
        return {m.metadata.role: f"{m.path.name} ({m.metadata.precision}, {m.provider})" for m in models}
