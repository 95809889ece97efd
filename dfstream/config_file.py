"""One YAML file for many cameras: ``dfstream run|serve --config FILE``, ``dfstream config check|example``.

Validated by pydantic with unknown keys refused; every error names the file, the line and the
field. ``${VAR}`` in a string reads the environment (credentials stay out of the file and are
never printed: URLs are shown with their password masked).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.ort_sessions import Device, PrecisionChoice
from dfstream.stream.outputs.settings import EventsConfig, MqttConfig, StrictSettings, WebhookConfig
from dfstream.stream.run_config import SourceConfig
from dfstream.stream.settings import DETECT_EVERY

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(DfstreamError):
    """A config file that cannot be used; the message starts with ``FILE:LINE:``."""


class ModelsSection(StrictSettings):
    dir: Path | None = Field(None, description="folder of ONNX graphs; default: the bundled models")
    detectors: tuple[Path, ...] = Field((), description="imported face models ('dfstream import' folders or files)")
    weights: dict[str, float] = Field(default_factory=dict, description="fusion weight per model name ('bundled': "
                                      "the bundled models' score); 1.0 where unset")
    device: Device = "auto"
    precision: PrecisionChoice = "auto"


class OutputsSection(StrictSettings):
    jsonl: str | None = Field(None, description="JSON-lines file of records ('-' for stdout)")
    video: Path | None = Field(None, description="annotated MP4 (name-<i>.mp4 per source when several)")
    events: EventsConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    mqtt: MqttConfig | None = None


class ServerSection(StrictSettings):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    token_env: str | None = Field(None, description="environment variable holding the page's token")
    max_peers: int = Field(4, ge=1)


class CamerasFile(StrictSettings):
    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    models: ModelsSection = ModelsSection()
    outputs: OutputsSection = OutputsSection()
    server: ServerSection = ServerSection()
    max_faces: int = Field(4, ge=1, le=16, description="default for sources that set none")
    stride: int | None = Field(None, ge=1, description="default for sources that set none; null: adaptive")
    threshold: float | None = Field(None, gt=0, lt=1, description="default for sources that set none")
    detect_every: int = Field(DETECT_EVERY, ge=1, description="default for sources that set none")
    explain: bool = False

    @model_validator(mode="after")
    def _unique_names(self) -> CamerasFile:
        seen: set[str] = set()
        for i, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"__duplicate__{i}")
            seen.add(source.name)
        return self


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Line (1-based) of every key and item in the composed YAML tree."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            _lines(value, child, out)
            out[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error (safe_load keeps the last,
    silently: a camera's second ``url:`` would win unseen)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice (first on line {seen[key]})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _refuse_aliases(text: str, path: Path) -> None:
    """YAML aliases (``*name``) can expand a few hundred bytes into gigabytes ("billion laughs"); a
    cameras file has no use for them, so the first one is an error, found before anything is built."""
    try:
        for event in yaml.parse(text):
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else 1
                raise ConfigError(f"{path}:{line}: YAML aliases (*{event.anchor}) are not accepted in a cameras file")
    except yaml.YAMLError:
        return  # the full parse below reports it with its line


INTERPOLATED = (("sources", "*", "url"), ("outputs", "mqtt", "url"))
"""The fields ``${VAR}`` may fill: where credentials live (camera URLs, the broker's). Anywhere else
(a webhook URL, a path) a variable could carry a secret to a place that publishes or sends it."""


def _interpolable(loc: tuple[Any, ...]) -> bool:
    return any(len(loc) == len(p) and all(a == "*" or a == b for a, b in zip(p, loc, strict=True))
               for p in INTERPOLATED)


def interpolated_fields(path: Path) -> dict[tuple[Any, ...], str]:
    """Where ``path`` reads the environment, with the text as written (``${VAR}`` unexpanded): what
    ``config check`` shows for those fields, so no expanded secret is ever printed."""
    found: dict[tuple[Any, ...], str] = {}

    def walk(value: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*loc, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*loc, i))
        elif isinstance(value, str) and ENV_REF.search(value):
            found[loc] = value

    walk(yaml.safe_load(path.read_text(encoding="utf-8")), ())
    return found


def _expand(value: Any, loc: tuple[Any, ...], where: str, lines: dict[tuple[Any, ...], int]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), where, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), where, lines) for i, v in enumerate(value)]
    if isinstance(value, str):
        if ENV_REF.search(value) and not _interpolable(loc):
            field = ".".join(str(p) for p in loc)
            raise ConfigError(f"{where}:{_line_of(loc, lines)}: {field}: ${{VAR}} is read only into source URLs "
                              "and outputs.mqtt.url")

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                field = ".".join(str(p) for p in loc)
                raise ConfigError(f"{where}:{_line_of(loc, lines)}: {field}: environment variable "
                                  f"{m.group(1)} is not set")
            return os.environ[m.group(1)]

        return ENV_REF.sub(sub, value)
    return value


def load_config(path: Path) -> CamerasFile:
    """Read, expand and validate ``path``; any problem is one ConfigError naming file, line and field."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}:1: not a text file (UTF-8 YAML expected)") from None
    _refuse_aliases(text, path)
    try:
        root = yaml.compose(text)
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no Python tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _lines(root, (), lines)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping with 'sources:' at the top")
    data = _expand(data, (), str(path), lines)
    try:
        return CamerasFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_message(exc, str(path), lines, data)) from None


def _message(exc: ValidationError, where: str, lines: dict[tuple[Any, ...], int], data: dict[str, Any]) -> str:
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    msg = str(first["msg"])
    dup = re.search(r"__duplicate__(\d+)", msg)
    if dup:
        i = int(dup.group(1))
        name = data["sources"][i].get("name")
        return f"{where}:{_line_of(('sources', i, 'name'), lines)}: sources.{i}.name: duplicate source name {name!r}"
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    field = ".".join(str(p) for p in loc) or "(top level)"
    return f"{where}:{_line_of(loc, lines)}: {field}: {msg}"


EXAMPLE = """\
# dfstream cameras file: `dfstream config check cameras.yaml`, then
# `dfstream run --config cameras.yaml` or `dfstream serve --config cameras.yaml`.
# Command-line flags override what is here. ${VAR} reads an environment variable, so passwords
# stay out of the file (and are never printed).

sources:                      # each needs a unique name: records, events, MQTT and the page use it
  - name: front-door
    url: rtsp://viewer:${FRONT_DOOR_PASSWORD}@192.168.1.20:554/stream1
    max_faces: 2              # optional, per source
    threshold: 0.45           # optional: where the label turns fake (0.5 = the models' thresholds)
  - name: desk-webcam
    url: "0"                  # a webcam index, quoted
    stride: 2                 # optional: model A on every 2nd frame of a track
  - name: doorway
    url: rtsp://192.168.1.21:554/stream1
    detect_every: 3           # optional: look for new faces every 3rd frame (people walk in here)
  - name: lobby-recording
    url: /srv/video/lobby.mp4

models:
  dir: null                   # null: the bundled models
  detectors: []               # imported detectors, e.g. [models/sbi] after 'dfstream import sbi FILE -o models/sbi'
  weights: {}                 # fusion weights, e.g. {bundled: 1.0, sbi: 2.0}; 1.0 where unset
  device: auto                # auto | cpu | cuda
  precision: auto             # auto (int8 graphs that passed their check on a CPU, fp16 on a GPU) | fp32 | fp16 | int8

outputs:
  jsonl: out/scores.jsonl     # one JSON line per scored face and frame
  video: null                 # annotated MP4 per source
  events:
    dir: out/events           # snapshot + clip per deepfake event, events.jsonl index
    pre_roll_s: 3
    post_roll_s: 3
    retention_days: 7
    retention_gb: 5
  webhooks:
    - url: https://hooks.example.org/dfstream
      secret_env: DFSTREAM_WEBHOOK_SECRET   # HMAC-SHA256 of the body in X-Dfstream-Signature
      timeout_s: 5
      retries: 3
  mqtt:
    url: mqtt://dfstream:${MQTT_PASSWORD}@192.168.1.10:1883
    prefix: dfstream          # dfstream/<source>/state, dfstream/events, dfstream/status
    discovery: true           # Home Assistant MQTT discovery under homeassistant/

server:                       # dfstream serve only
  host: 127.0.0.1             # any other address needs a token
  port: 8080
  token_env: DFSTREAM_TOKEN

max_faces: 4                  # defaults for sources that set none
stride: null                  # null: model A on every frame while the frame budget allows, less often when behind
threshold: null
detect_every: 10              # live sources look for new faces every 10th frame once every face is tracked
explain: false                # model A's attention heatmap in the views and records
"""


def run_fields(cfg: CamerasFile, bundled_models: Path) -> dict[str, Any]:
    """RunConfig fields from a file (command-line flags are laid over them by the caller)."""
    out = cfg.outputs
    return {
        "sources": tuple(s.url for s in cfg.sources),
        "names": tuple(s.name for s in cfg.sources),
        "per_source": cfg.sources,
        "models_dir": cfg.models.dir or bundled_models,
        "detectors": cfg.models.detectors,
        "model_weights": cfg.models.weights,
        "device": cfg.models.device,
        "precision": cfg.models.precision,
        "out": out.jsonl,
        "video": out.video,
        "events": out.events,
        "webhooks": out.webhooks,
        "mqtt": out.mqtt,
        "max_faces": cfg.max_faces,
        "stride": cfg.stride,
        "threshold": cfg.threshold,
        "detect_every": cfg.detect_every,
        "explain": cfg.explain,
    }


def serve_fields(cfg: CamerasFile, bundled_models: Path) -> dict[str, Any]:
    """ServeConfig fields from a file: the sources become the page's feeds; the token comes from its
    environment variable (a named variable that is unset is an error, not an open server)."""
    fields = run_fields(cfg, bundled_models)
    del fields["video"]
    server = cfg.server
    token = None
    if server.token_env is not None:
        token = os.environ.get(server.token_env)
        if not token:
            raise ConfigError(f"server.token_env: environment variable {server.token_env} is not set")
    return {**fields, "host": server.host, "port": server.port, "token": token, "max_peers": server.max_peers}


def describe(cfg: CamerasFile, written: dict[tuple[Any, ...], str] | None = None) -> list[str]:
    """What ``config check`` prints: a line per source and output, passwords masked; fields read from the
    environment are shown as written (``written``, from :func:`interpolated_fields`), never expanded."""
    from dfstream.stream.outputs.webhook import webhook_label
    from dfstream.stream.sources import redact

    def shown(loc: tuple[Any, ...], url: str) -> str:
        return redact((written or {}).get(loc, url))

    lines = [f"source {s.name}: {shown(('sources', i, 'url'), s.url)}" + "".join(
        f", {k} {v}" for k, v in (("max_faces", s.max_faces), ("stride", s.stride), ("threshold", s.threshold),
                             ("detect_every", s.detect_every))
        if v is not None) for i, s in enumerate(cfg.sources)]
    out = cfg.outputs
    if out.jsonl:
        lines.append(f"records: {out.jsonl}")
    if out.events:
        e = out.events
        lines.append(f"events: {e.dir} (pre-roll {e.pre_roll_s:g} s, post-roll {e.post_roll_s:g} s, "
                     f"{e.retention_days:g} days / {e.retention_gb:g} GB)")
    lines += [f"{webhook_label(w.url, i)}" + (" (signed)" if w.secret_env else "") for i, w in enumerate(out.webhooks)]
    if out.mqtt:
        lines.append(f"mqtt: {shown(('outputs', 'mqtt', 'url'), out.mqtt.url)} prefix {out.mqtt.prefix}"
                     + (f", discovery under {out.mqtt.discovery_prefix}/" if out.mqtt.discovery else ""))
    lines.append(f"server: {cfg.server.host}:{cfg.server.port}" + (" with a token" if cfg.server.token_env else ""))
    return lines
