"""Imported face models (``dfstream import``) scored beside the bundled ones, each at its own pace.

A published detector such as SBI (EfficientNet-B4 at 380 px, ~110 ms a face on two CPU cores) cannot
score every frame of a 30 fps camera, and must never hold one back. So on live and paced sources each
model has a lane of its own, like model A's (``frame_lane.py``): a tick hands it the crops of the
faces it sees when the lane is free and goes on; the scores reach their tracks at the first tick
after they are ready, and every record says how old each score is. Files read as fast as they are
scored (no deadline) run each model inside the tick instead, so a file's records are the same on
every run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dfstream.stream.contract.crop_policy import CropPolicy
from dfstream.stream.contract.exceptions import InputPathError, MetadataError
from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.contract.variants import STREAM_ROLES
from dfstream.stream.crops import InputSpec, crop_for, to_model_input
from dfstream.stream.frame_lane import lower_own_priority
from dfstream.stream.ort_sessions import DEFAULT_ORT, LANE_INTRA_THREADS, OrtModel, OrtSettings, load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceModel:
    """One imported classifier: its session, input and crop, read from its metadata."""

    model: OrtModel
    name: str
    input: InputSpec
    crop_policy: CropPolicy

    @classmethod
    def load(cls, path: Path, device: str = "auto", settings: OrtSettings = DEFAULT_ORT) -> FaceModel:
        model = load_model(path, "face_model", device, settings=settings)
        name = model.metadata.name
        if name is None:  # the metadata check requires it; kept for the type checker
            raise MetadataError(f"{path}: metadata field 'dfstream.name' is missing")
        return cls(model, name, InputSpec.of(model.metadata), model.metadata.crop_policy)

    @property
    def threshold(self) -> float:
        return self.model.metadata.threshold

    def crop(self, image: np.ndarray, face: FaceObs) -> np.ndarray:
        return crop_for(image, face, self.crop_policy, self.input.size)

    def scores(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated P(fake) for BGR uint8 crops made by :meth:`crop`."""
        if not crops:
            return np.zeros(0, np.float32)
        batch = to_model_input(crops, self.input)
        if self.model.inputs[0].shape[0] == 1:  # an imported graph with a fixed batch of one
            return np.concatenate([self.model.p_fake(batch[i : i + 1]) for i in range(len(batch))])
        return self.model.p_fake(batch)


def face_model_files(paths: Sequence[Path]) -> list[Path]:
    """The face-model graphs among ``paths`` (a file, or every fp32 ``*.onnx`` of a folder that
    ``dfstream import`` wrote); a path with none is an error that names it. Their role is checked when
    they load, so each graph is opened once."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            raise InputPathError(f"models not found: {path}")
        found = [p for p in sorted(path.glob("*.onnx")) if p.suffixes == [".onnx"]]
        if not found:
            missing = [FILE_NAME_OF_ROLE[r] for r in STREAM_ROLES if not (path / FILE_NAME_OF_ROLE[r]).is_file()]
            raise InputPathError(f"{path}: missing {', '.join(missing)} (write them with 'dfstream export'), and no "
                                 "imported detector (*.onnx written by 'dfstream import') either")
        files += found
    return files


def is_stream_folder(path: Path) -> bool:
    """Whether ``path`` holds the bundled kind of model set (model A and model B's graphs)."""
    return path.is_dir() and (path / FILE_NAME_OF_ROLE["frame_cnn"]).is_file()


def load_face_models(files: Sequence[Path], device: str = "auto",
                     settings: OrtSettings = DEFAULT_ORT, on_lanes: bool = False) -> list[FaceModel]:
    """``on_lanes``: the models will run on their lanes (a source has a deadline), so each session on one
    intra-op thread, as model A's on its lane."""
    if on_lanes:
        settings = replace(settings, intra_threads=LANE_INTRA_THREADS)
    models = [FaceModel.load(p, device, settings) for p in files]
    names = [m.name for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MetadataError(f"two imported models are named {twice[0]!r} (metadata field 'dfstream.name'); "
                            "import one again with another --name")
    for m in models:
        log.info("model %s: %s (%s, %s)", m.name, m.model.path.name, m.model.metadata.precision, m.model.provider)
    return models


@dataclass
class ModelScore:
    """A track's latest score from one imported model, and when its frame was captured."""

    p: float
    t_capture_ns: int


@dataclass
class FaceModelScores:
    """What a track holds of the imported models: the latest score of each."""

    latest: dict[str, ModelScore] = field(default_factory=dict)

    def snapshot(self, names: Sequence[str], now_ns: int) -> tuple[dict[str, float | None], dict[str, float | None]]:
        """Each model's P(fake) and its age in ms (capture of its frame → now); None before its first."""
        ps: dict[str, float | None] = {}
        ages: dict[str, float | None] = {}
        for name in names:
            s = self.latest.get(name)
            ps[name] = None if s is None else s.p
            ages[name] = None if s is None else (now_ns - s.t_capture_ns) / 1e6
        return ps, ages


@dataclass(frozen=True)
class FaceJob:
    """One face handed to the imported models: where its scores go, its frame and its face."""

    scores: FaceModelScores
    image: np.ndarray
    face: FaceObs
    t_capture_ns: int


class _Lane:
    """One run of one model in flight at a time, on its own thread."""

    def __init__(self, model: FaceModel) -> None:
        self.model = model
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dfstream-{model.name}",
                                        initializer=lower_own_priority)
        self._job: tuple[list[FaceJob], Future[np.ndarray]] | None = None

    def collect(self) -> None:
        if self._job is None or not self._job[1].done():
            return
        jobs, future = self._job
        self._job = None
        apply_scores(self.model.name, jobs, future.result())

    def submit(self, jobs: Sequence[FaceJob]) -> None:
        if self._job is None and jobs:
            self._job = (list(jobs), self._pool.submit(score_jobs, self.model, list(jobs)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def score_jobs(model: FaceModel, jobs: Sequence[FaceJob]) -> np.ndarray:
    """Crop (on the lane's thread: SBI's 380 px resize is not free) and score."""
    return model.scores([model.crop(j.image, j.face) for j in jobs])


def apply_scores(name: str, jobs: Sequence[FaceJob], ps: np.ndarray) -> None:
    for job, p in zip(jobs, ps, strict=True):
        job.scores.latest[name] = ModelScore(float(p), job.t_capture_ns)


class FaceModelStage:
    """Every imported model of a pipeline: in the tick for files, on their own lanes when live."""

    def __init__(self, models: Sequence[FaceModel]) -> None:
        self.models = list(models)
        self.names = tuple(m.name for m in self.models)
        self._lanes = [_Lane(m) for m in self.models]

    def __bool__(self) -> bool:
        return bool(self.models)

    def tick(self, jobs: Sequence[FaceJob], live: bool) -> float:
        """Score ``jobs``; with ``live`` only on lanes that are free. Returns the ms spent in the tick."""
        t = time.perf_counter()
        if live:
            for lane in self._lanes:
                lane.collect()
                lane.submit(jobs)
        elif jobs:
            for model in self.models:
                apply_scores(model.name, jobs, score_jobs(model, jobs))
        return (time.perf_counter() - t) * 1000.0

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()


def split_models(paths: Sequence[Path], bundled: Path) -> tuple[Path, tuple[Path, ...]]:
    """``--models`` given any number of times: the one folder of model A and model B's graphs (the
    bundled ones when none is given) and the imported face models beside it."""
    sets = [p for p in paths if is_stream_folder(p)]
    if len(sets) > 1:
        raise InputPathError(f"--models: {sets[0]} and {sets[1]} both hold model A and model B; give one of them")
    return (sets[0] if sets else bundled), tuple(p for p in paths if p not in sets)
