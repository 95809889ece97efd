"""What ``dfstream run`` and ``dfstream serve`` are configured with: flags and the cameras file validated
once (unknown fields are errors), then resolved into each pipeline's ``PipelineOptions``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from dfstream.stream.ort_sessions import Device, OrtSettings, PrecisionChoice
from dfstream.stream.outputs.settings import EventsConfig, MqttConfig, StrictSettings, WebhookConfig
from dfstream.stream.settings import DETECT_EVERY, DETECT_EVERY_HELP, CameraSettings, PipelineOptions


class SourceConfig(StrictSettings):
    """One camera of a config file; unset fields take the file's (or the command line's) defaults."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="what records, events, MQTT topics and the page call it")
    url: str = Field(min_length=1, description="rtsp:// URL, webcam index or video file; ${VAR} reads the environment")
    max_faces: int | None = Field(None, ge=1, le=16)
    stride: int | None = Field(None, ge=1)
    threshold: float | None = Field(None, gt=0, lt=1)
    detect_every: int | None = Field(None, ge=1)


class _StreamConfig(StrictSettings):
    """What ``dfstream run`` and ``dfstream serve`` share: models, scoring and outputs."""

    names: tuple[str | None, ...] = Field((), description="a name per source (config file); empty: from the URL")
    per_source: tuple[SourceConfig, ...] = Field(
        (), description="per-source max faces, stride, threshold and detect_every")
    models_dir: Path = Field(description="folder with frame_cnn.onnx, clip_encoder.onnx, clip_head.onnx")
    detectors: tuple[Path, ...] = Field((), description="imported face models (folders or .onnx files written by "
                                        "'dfstream import') scored beside the bundled models")
    model_weights: dict[str, float] = Field(
        default_factory=dict, description="fusion weight per imported model name, and 'bundled' for the bundled "
        "models' fused score; 1.0 where unset, 0: shown in records but not fused")
    device: Device = "auto"
    precision: PrecisionChoice = "auto"
    out: str | None = Field(None, description="JSON-lines path, '-' for stdout, None for no records")
    max_faces: int = Field(4, ge=1, le=16)
    stride: int | None = Field(
        None, ge=1, description="model A on every k-th frame of a track, fixed; None: the deadline scheduler's k"
    )
    explain: bool = Field(False, description="records carry model A's attention grid; the views draw its heatmap")
    threshold: float | None = Field(
        None, gt=0, lt=1, description="where the fused label turns (0.5: the models' thresholds; lower: more alerts)"
    )
    detect_every: int = Field(DETECT_EVERY, ge=1, description=DETECT_EVERY_HELP)
    events: EventsConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    mqtt: MqttConfig | None = None
    ort: OrtSettings = Field(default_factory=OrtSettings, description="CPU session settings (benchmarks)")
    overlap: bool = Field(True, description="find the next frames' faces while the models score the last ones "
                          "(four paced cameras on 2 cores: 2-7 of 960 frames dropped with it, 41-121 without; about "
                          "4 ms more latency for one camera)")
    frame_lane: bool = Field(True, description="for live and paced sources, run model A beside the frames on its own "
                             "thread: its score then lags a few frames, and its time never delays one")

    serves: ClassVar[bool] = False
    """Whether the pipeline keeps running with no sources (the server's)."""

    @field_validator("model_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in weights.items() if not 0.0 <= v <= 100.0}
        if bad:
            raise ValueError(f"fusion weights must lie between 0 and 100: {bad}")
        return weights

    def pipeline_options(self) -> PipelineOptions:
        """The settings every engine runs with: each camera of the file with the run's settings under its own."""
        defaults = CameraSettings(max_faces=self.max_faces, stride=self.stride, threshold=self.threshold,
                                  detect_every=self.detect_every)
        cameras = tuple(
            (s.name, CameraSettings(
                max_faces=defaults.max_faces if s.max_faces is None else s.max_faces,
                stride=defaults.stride if s.stride is None else s.stride,
                threshold=defaults.threshold if s.threshold is None else s.threshold,
                detect_every=defaults.detect_every if s.detect_every is None else s.detect_every,
            ))
            for s in self.per_source
        )
        return PipelineOptions(defaults=defaults, cameras=cameras, explain=self.explain, overlap=self.overlap,
                               frame_lane=self.frame_lane, model_weights=tuple(sorted(self.model_weights.items())),
                               serve=self.serves)


class RunConfig(_StreamConfig):
    """``dfstream run``: sources, models, outputs and pacing of one streaming process."""

    sources: tuple[str, ...] = Field(min_length=1, description="video files, webcam indices or rtsp:// URLs")
    video: Path | None = Field(None, description="annotated MP4 (one per source: name-<i>.mp4 when several)")
    window: bool | None = Field(None, description="live window; None: on when a display exists")
    realtime: bool = Field(False, description="pace files at their fps (live-source policy: drop the oldest)")
    loop: bool = Field(False, description="start files again at their end (stop with --duration or a signal)")
    duration_s: float | None = Field(None, gt=0)
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    retry: int | None = Field(8, ge=1, description="reconnect attempts per outage; None: forever")
    metrics_port: int | None = Field(None, ge=1, le=65535, description="serve Prometheus metrics on "
                                     "127.0.0.1:PORT/metrics while running (all cameras of the cluster with ray)")
    engine: Literal["local", "ray"] = Field("local", description="local: this process; ray: camera workers and "
                                            "shared scorers on a Ray cluster (the dfstream[ray] extra)")
    ray_address: str | None = Field(None, min_length=1, description="'auto', 'ray://host:port' or 'host:port' "
                                    "of a running cluster; None: start a local Ray instance")
    ray_timeout_s: float = Field(30.0, gt=0, le=600, description="how long to wait for the cluster to answer")


class ServeConfig(_StreamConfig):
    """``dfstream serve``: the page, its server-side feeds, models and outputs."""

    serves: ClassVar[bool] = True

    sources: tuple[str, ...] = Field((), description="server-side feeds the page can watch (files loop in real time)")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token: str | None = Field(None, repr=False, description="required by the page and every endpoint when set")
    max_peers: int = Field(4, ge=1)
    ice_servers: tuple[str, ...] = ()
