"""What each output of a run is configured with (events, webhooks, MQTT), validated once where the run's
settings are: the stream's outputs read these, and the run and server configs hold them."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class StrictSettings(BaseModel):
    """Settings from flags and files: an unknown key is refused, and values are frozen once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventsConfig(StrictSettings):
    """Where deepfake events go: a snapshot and a clip each, and an index (``events.jsonl``)."""

    dir: Path = Field(description="events folder (made if missing; refused at start-up when not writable)")
    pre_roll_s: float = Field(3.0, ge=0, le=60, description="seconds of video kept before an event starts")
    post_roll_s: float = Field(3.0, ge=0, le=60, description="seconds recorded after it ends")
    clips: bool = Field(True, description="write an MP4 clip per event (snapshots are always written)")
    retention_days: float = Field(7.0, gt=0, description="events older than this are removed, oldest first")
    retention_gb: float = Field(5.0, gt=0, description="the folder is kept under this size, oldest removed first")
    private: bool = Field(True, description="snapshots, clips and the index readable by this user only (files "
                          "0600, folder 0700); false leaves them to the umask")


class WebhookConfig(StrictSettings):
    url: str = Field(pattern=r"^https?://", description="receiver; the event JSON is POSTed on start and on end")
    secret_env: str | None = Field(
        None, description="environment variable holding the HMAC-SHA256 secret (X-Dfstream-Signature header)"
    )
    timeout_s: float = Field(5.0, gt=0, le=60)
    retries: int = Field(3, ge=0, le=10, description="attempts after the first, with backoff, then dropped")
    queue: int = Field(256, ge=1, description="events waiting to be sent; more are dropped and counted")


class MqttConfig(StrictSettings):
    url: str = Field(pattern=r"^mqtts?://", description="mqtt://[user:pass@]host:port; ${VAR} reads the environment")
    prefix: str = Field("dfstream", min_length=1, description="topic prefix")
    discovery: bool = Field(True, description="publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = Field("homeassistant", min_length=1)
    state_interval_s: float = Field(1.0, gt=0, description="at most one state message per source this often")
    queue: int = Field(1000, ge=1, description="messages held while the broker is away; more are dropped")
