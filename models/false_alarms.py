"""False alarms on genuine footage: run the real stream over a clip nobody manipulated and count
how often each model, and the fused label, calls a frame fake with the models' own thresholds.

Held-out AUC says how well fakes and reals are ordered; this says what an operator watching a
real person would see. Only the streaming runtime is used (no torch, no TensorFlow).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dfstream.models.data.webrtc_codec import CALL_BITRATE, WebrtcCodec, round_trip_video
from dfstream.stream.contract.exceptions import DatasetError
from dfstream.stream.local_run import run_stream
from dfstream.stream.model_set import model_files
from dfstream.stream.ort_sessions import read_metadata
from dfstream.stream.run_config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FalseAlarms:
    source: str
    frames_scored: int
    frame_threshold: float
    clip_threshold: float
    frame_model_rate: float
    """Share of scored frames where model A's P(fake) ≥ its threshold."""
    clip_frames: int
    clip_model_rate: float | None
    """Share of frames with a 16-frame clip score where model B's P(fake) ≥ its threshold."""
    label_fake_rate: float
    """Share of scored frames the stream labelled ``fake`` (fused, smoothed, hysteresis)."""
    mean_score: float
    label_real_rate_after_1s: float | None = None
    """Share of each track's frames after its first ``SETTLE_FRAMES`` labelled ``real``."""
    through: str | None = None
    """The WebRTC codec the frames went through and back first (``--through``), as a browser call sends them."""
    bitrate: int | None = None


SETTLE_FRAMES = 30
"""The first second of a track at 30 fps, in which the label may still be settling."""


def settled(scores: Sequence[dict[str, object]]) -> list[bool]:
    """Per score record: whether its track is past its first ``SETTLE_FRAMES``."""
    seen: dict[object, int] = {}
    out = []
    for r in scores:
        n = seen[r["track_id"]] = seen.get(r["track_id"], 0) + 1
        out.append(n > SETTLE_FRAMES)
    return out


def _real_after_settling(scores: list[dict[str, object]]) -> float | None:
    real = [r["label"] == "real" for r, done in zip(scores, settled(scores), strict=True) if done]
    return sum(real) / len(real) if real else None


def rates(records: list[dict[str, object]], source: str, frame_threshold: float, clip_threshold: float) -> FalseAlarms:
    scores = [r for r in records if r.get("type") == "score"]
    if not scores:
        raise DatasetError(f"{source}: no face was scored, so there is no false-alarm rate to report")
    frame_p = [float(r["score_frame"]) for r in scores if r["score_frame"] is not None]  # type: ignore[arg-type]
    clip_p = [float(r["score_clip"]) for r in scores if r["score_clip"] is not None]  # type: ignore[arg-type]
    return FalseAlarms(
        source=source,
        frames_scored=len(scores),
        frame_threshold=frame_threshold,
        clip_threshold=clip_threshold,
        frame_model_rate=sum(p >= frame_threshold for p in frame_p) / max(len(frame_p), 1),
        clip_frames=len(clip_p),
        clip_model_rate=sum(p >= clip_threshold for p in clip_p) / len(clip_p) if clip_p else None,
        label_fake_rate=sum(r["label"] == "fake" for r in scores) / len(scores),
        mean_score=sum(float(r["score"]) for r in scores) / len(scores),  # type: ignore[arg-type]
        label_real_rate_after_1s=_real_after_settling(scores),
    )


def model_thresholds(models: Path) -> tuple[float, float]:
    """Model A's and model B's thresholds from the metadata (calibrated scale) of the graphs the stream
    runs on the CPU (an int8 variant has its own calibration and threshold)."""
    files = model_files(models, "auto")
    return read_metadata(files["frame_cnn"]).threshold, read_metadata(files["clip_head"]).threshold


def stream_records(source: Path, models: Path, records_path: Path, device: str = "cpu") -> list[dict[str, object]]:
    """Every frame of ``source`` through the real stream (one face); its records, also written to ``records_path``."""
    records_path.parent.mkdir(parents=True, exist_ok=True)
    config = RunConfig(sources=(str(source),), models_dir=models, device=device,  # type: ignore[arg-type]
                       out=str(records_path), window=False, max_faces=1)  # fmt: skip
    _, errors = run_stream(config)
    for e in errors:
        log.warning("%s", e)
    return read_records(records_path)


def read_records(path: Path) -> list[dict[str, object]]:
    """The records of a stream's JSON-lines file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure_false_alarms(source: Path, models: Path, out: Path, device: str = "cpu",
                         through: WebrtcCodec | None = None, bitrate: int = CALL_BITRATE) -> FalseAlarms:
    """Every frame of ``source`` through the stream (first through a WebRTC codec and back, with
    ``through``); records and the rates are written to ``out``."""
    frame_t, clip_t = model_thresholds(models)
    scored = source
    if through is not None:
        scored = out / f"{source.stem}.{through}-{bitrate // 1000}k.mkv"
        round_trip_video(source, scored, through, bitrate)
    records = stream_records(scored, models, out / "records.jsonl", device)
    result = rates(records, str(source), frame_t, clip_t)
    if through is not None:
        result = replace(result, through=through, bitrate=bitrate)
    (out / "false_alarms.json").write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result
