"""``dfstream run``: the streaming detector's command (thin: parse into RunConfig, call run_stream)."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dfstream.cli_common import FRAME_LANE_HELP, Device, Precision, default_of, guard
from dfstream.stream.contract.exceptions import DfstreamError
from dfstream.stream.contract.variants import AUTO_PRECISION_HELP
from dfstream.stream.outputs.settings import EventsConfig, MqttConfig, WebhookConfig
from dfstream.stream.run_config import RunConfig, ServeConfig
from dfstream.stream.settings import DETECT_EVERY_HELP

WEBHOOK_SECRET_ENV = "DFSTREAM_WEBHOOK_SECRET"
PRECISION_HELP = f"Graph variant: {AUTO_PRECISION_HELP}, fp32, fp16 (for CUDA) or int8."
STRIDE_HELP = ("Run model A on every k-th frame of a track, fixed. Default: every frame while live sources' frame "
               "budget allows, every 2nd to 4th when behind.")
EXPLAIN_HELP = ("Show where model A looked: a heatmap over each face in the video, window and page, and a "
                "14x14 'attention' grid in each record.")


EVENTS_HELP = ("Folder for deepfake events: a JPEG snapshot and an MP4 clip (3 s before to 3 s after) per "
               "event, and events.jsonl; kept 7 days / 5 GB.")
THRESHOLD_HELP = ("Sensitivity: where the fused label turns fake, 0..1 on the score's scale (0.5 = the models' "
                  "thresholds; lower alerts more).")


WEBHOOK_HELP = ("POST each deepfake event (start and end) here; repeatable. Signed with HMAC-SHA256 when "
                f"{WEBHOOK_SECRET_ENV} is set.")
MQTT_HELP = "mqtt://[user:pass@]host:port: events, per-source state and Home Assistant discovery."
MODELS_HELP = ("Repeatable. A folder with frame_cnn.onnx, clip_encoder.onnx and clip_head.onnx (default: the "
               "bundled models), and/or imported detectors ('dfstream import' folders or .onnx files) scored "
               "beside them.")
CONFIG_HELP = ("A cameras file (see 'dfstream config example'): sources, models, outputs, server. Flags given "
               "here override it.")
SHARED_PARAMS = {
    "sources": "source", "models_dir": "models", "detectors": "models", "device": "device", "precision": "precision",
    "out": "out",
    "max_faces": "max_faces", "stride": "stride", "explain": "explain", "threshold": "threshold",
    "detect_every": "detect_every",
    "events": "events_dir", "webhooks": "webhook", "mqtt": "mqtt",
}
"""Config field → the command-line parameter that sets it, for what run and serve share."""
RUN_PARAMS = SHARED_PARAMS | {
    "video": "video", "window": "window", "realtime": "realtime", "loop": "loop", "duration_s": "duration",
    "rtsp_transport": "rtsp_transport", "retry": "retry", "overlap": "overlap", "frame_lane": "frame_lane",
    "engine": "engine",
    "ray_address": "ray_address",
    "ray_timeout_s": "ray_timeout", "metrics_port": "metrics_port",
}
SERVE_PARAMS = SHARED_PARAMS | {
    "host": "host", "port": "port", "token": "token", "max_peers": "max_peers", "ice_servers": "ice_server",
}


def webhook_configs(urls: list[str] | None) -> tuple[WebhookConfig, ...]:
    secret = WEBHOOK_SECRET_ENV if os.environ.get(WEBHOOK_SECRET_ENV) else None
    return tuple(WebhookConfig(url=u, secret_env=secret) for u in urls or ())


def _given(ctx: typer.Context, param: str) -> bool:
    """Whether the user set ``param`` (on the command line or through its environment variable)."""
    source = ctx.get_parameter_source(param)
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def merge_flags(
    ctx: typer.Context, config: Path | None, flags: dict[str, Any], params: dict[str, str], serve: bool = False
) -> dict[str, Any]:
    """The file's fields with every flag given on the command line laid over them (no file: the flags)."""
    if config is None:
        return flags
    from dfstream.config_file import load_config, run_fields, serve_fields
    from dfstream.stream.contract.paths import BUNDLED_MODELS

    loaded = load_config(config)
    merged = serve_fields(loaded, BUNDLED_MODELS) if serve else run_fields(loaded, BUNDLED_MODELS)
    given = {name for name in params.values() if _given(ctx, name)}
    for field, param in params.items():
        if param not in given:
            continue
        if field == "events" and merged.get("events") is not None:
            merged["events"] = merged["events"].model_copy(update={"dir": flags["events"].dir})
        else:
            merged[field] = flags[field]
        if field == "sources":
            merged["names"], merged["per_source"] = (), ()
    return merged


ENGINE_HELP = ("local: everything in this process. ray: a camera worker per source and shared batched scorers "
               "on a Ray cluster (pip install 'dfstream\\[ray]'); records and events come back here.")
RAY_ADDRESS_HELP = ("With --engine ray: 'auto', 'host:port' or 'ray://host:port' of a running cluster. Default: "
                    "start a local Ray instance.")


class Engine(StrEnum):
    local = "local"
    ray = "ray"


class Transport(StrEnum):
    tcp = "tcp"
    udp = "udp"


def _retry(text: str) -> int | None:
    if text == "forever":
        return None
    if not text.isdigit() or int(text) < 1:
        raise typer.BadParameter(f"{text!r} is neither a positive count nor 'forever'")
    return int(text)


def run_cmd(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Video file, webcam index (0) or rtsp:// URL; repeat for several streams. "
                     "Default: the bundled sample clip."),
    ] = None,
    models: Annotated[list[Path] | None, typer.Option(help=MODELS_HELP)] = None,
    device: Annotated[
        Device, typer.Option(help="ONNX Runtime provider: auto (CUDA when present), cpu, cuda.")
    ] = default_of(RunConfig, "device"),
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = default_of(RunConfig, "precision"),
    out: Annotated[str | None, typer.Option(help="JSON-lines file of scores ('-' for stdout).")] = None,
    video: Annotated[Path | None, typer.Option(help="Annotated MP4 (H.264) to write.")] = None,
    window: Annotated[
        bool | None, typer.Option("--window/--no-window", help="Live window; default: on when a display exists.")
    ] = None,
    max_faces: Annotated[int, typer.Option(help="Faces tracked per stream.")] = default_of(RunConfig, "max_faces"),
    stride: Annotated[int | None, typer.Option(min=1, help=STRIDE_HELP)] = None,
    detect_every: Annotated[
        int, typer.Option(min=1, help=DETECT_EVERY_HELP)
    ] = default_of(RunConfig, "detect_every"),
    realtime: Annotated[
        bool, typer.Option(help="Pace files at their fps, dropping frames when behind.")
    ] = default_of(RunConfig, "realtime"),
    loop: Annotated[bool, typer.Option(help="Start files again at their end.")] = default_of(RunConfig, "loop"),
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    rtsp_transport: Annotated[
        Transport, typer.Option(help="RTSP transport.")
    ] = default_of(RunConfig, "rtsp_transport"),
    retry: Annotated[
        str, typer.Option(help="Reconnect attempts per outage of a live source, or 'forever'.")
    ] = default_of(RunConfig, "retry"),
    summary_json: Annotated[Path | None, typer.Option(help="Also write the end-of-run summary as JSON.")] = None,
    explain: Annotated[bool, typer.Option("--explain", help=EXPLAIN_HELP)] = default_of(RunConfig, "explain"),
    events_dir: Annotated[Path | None, typer.Option(help=EVENTS_HELP)] = None,
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
    webhook: Annotated[list[str] | None, typer.Option(help=WEBHOOK_HELP)] = None,
    mqtt: Annotated[str | None, typer.Option(help=MQTT_HELP)] = None,
    overlap: Annotated[bool, typer.Option("--overlap/--no-overlap", help="Find the next frames' faces while the "
                                          "models score the last ones (the default: with four paced cameras on 2 "
                                          "cores far fewer frames dropped; --no-overlap saves one camera ~4 ms: "
                                          "benchmarks/RESULTS.md).")] = default_of(RunConfig, "overlap"),
    frame_lane: Annotated[
        bool, typer.Option("--frame-lane/--no-frame-lane", help=FRAME_LANE_HELP)
    ] = default_of(RunConfig, "frame_lane"),
    engine: Annotated[Engine, typer.Option(help=ENGINE_HELP)] = default_of(RunConfig, "engine"),
    ray_address: Annotated[str | None, typer.Option(help=RAY_ADDRESS_HELP)] = None,
    ray_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for --ray-address to answer.")
    ] = default_of(RunConfig, "ray_timeout_s"),
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics "
                                                      "while running (one endpoint for a Ray cluster).")] = None,
) -> None:
    """Score faces in live streams or files: JSON lines, annotated video, a summary at the end."""

    def body() -> None:
        import signal
        import threading

        from dfstream.stream.contract.paths import BUNDLED_MODELS, SAMPLE_CLIP
        from dfstream.stream.face_models import split_models
        from dfstream.stream.local_run import run_stream

        models_dir, detectors = split_models(models or [], BUNDLED_MODELS)
        flags = {
            "sources": tuple(source) if source else (str(SAMPLE_CLIP),),
            "models_dir": models_dir,
            "detectors": detectors,
            "device": device.value,
            "precision": precision.value,
            "out": out,
            "video": video,
            "window": window,
            "max_faces": max_faces,
            "stride": stride,
            "detect_every": detect_every,
            "realtime": realtime,
            "loop": loop,
            "duration_s": duration,
            "rtsp_transport": rtsp_transport.value,
            "retry": _retry(retry),
            "explain": explain,
            "threshold": threshold,
            "events": None if events_dir is None else EventsConfig(dir=events_dir),
            "webhooks": webhook_configs(webhook),
            "mqtt": None if mqtt is None else MqttConfig(url=mqtt),
            "overlap": overlap,
            "frame_lane": frame_lane,
            "engine": engine.value,
            "ray_address": ray_address,
            "ray_timeout_s": ray_timeout,
            "metrics_port": metrics_port,
        }
        cfg = RunConfig(**merge_flags(ctx, config, flags, RUN_PARAMS))
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if cfg.ray_address is not None and cfg.engine != "ray":
            raise DfstreamError("--ray-address needs --engine ray")
        if cfg.engine == "ray" and cfg.detectors:
            raise DfstreamError("--engine ray does not run imported detectors yet; run them with --engine local")
        if cfg.engine == "ray":
            summary, errors = _run_on_ray(ctx, cfg, config, flags, stop)
        else:
            summary, errors = run_stream(cfg, stop)
        typer.echo(summary.text(), err=out == "-")
        if summary_json is not None:
            summary_json.write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
        if errors:
            raise DfstreamError("; ".join(errors))

    guard(body)


def serve_cmd(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(help=CONFIG_HELP)] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Server-side feed the page can watch annotated: rtsp:// URL, webcam index or video "
                     "file (files loop in real time). Repeatable."),
    ] = None,
    models: Annotated[list[Path] | None, typer.Option(help=MODELS_HELP)] = None,
    device: Annotated[
        Device, typer.Option(help="ONNX Runtime provider: auto, cpu, cuda.")
    ] = default_of(ServeConfig, "device"),
    precision: Annotated[Precision, typer.Option(help=PRECISION_HELP)] = default_of(ServeConfig, "precision"),
    host: Annotated[
        str, typer.Option(help="Address to listen on; anything but loopback needs a token.")
    ] = default_of(ServeConfig, "host"),
    port: Annotated[int, typer.Option(help="TCP port.")] = default_of(ServeConfig, "port"),
    token: Annotated[
        str | None, typer.Option(envvar="DFSTREAM_TOKEN", help="Required by the page and every endpoint when set.")
    ] = None,
    max_peers: Annotated[
        int, typer.Option(min=1, help="Concurrent WebRTC peers; more are refused.")
    ] = default_of(ServeConfig, "max_peers"),
    ice_server: Annotated[
        list[str] | None, typer.Option(help="STUN/TURN URL (repeatable). Default: none, nothing outside is contacted.")
    ] = None,
    max_faces: Annotated[int, typer.Option(help="Faces tracked per peer.")] = default_of(ServeConfig, "max_faces"),
    stride: Annotated[int | None, typer.Option(min=1, help=STRIDE_HELP)] = None,
    detect_every: Annotated[
        int, typer.Option(min=1, help=DETECT_EVERY_HELP)
    ] = default_of(ServeConfig, "detect_every"),
    explain: Annotated[bool, typer.Option("--explain", help=EXPLAIN_HELP)] = default_of(ServeConfig, "explain"),
    out: Annotated[str | None, typer.Option(help="JSON-lines file of every record the server makes.")] = None,
    events_dir: Annotated[Path | None, typer.Option(help=EVENTS_HELP)] = None,
    threshold: Annotated[float | None, typer.Option(help=THRESHOLD_HELP)] = None,
    webhook: Annotated[list[str] | None, typer.Option(help=WEBHOOK_HELP)] = None,
    mqtt: Annotated[str | None, typer.Option(help=MQTT_HELP)] = None,
) -> None:
    """Serve the web page: a browser sends its webcam over WebRTC and sees each face's score live."""

    def body() -> None:
        from dfstream.stream.contract.paths import BUNDLED_MODELS
        from dfstream.stream.face_models import split_models
        from dfstream.stream.local_run import event_outputs, load_detectors, open_sources
        from dfstream.stream.model_set import ModelSet
        from dfstream.stream.server import ServeOptions, check_bind, serve
        from dfstream.stream.sinks import JsonlSink, Sink
        from dfstream.stream.sources import RetryPolicy, SourceOptions

        models_dir, detectors = split_models(models or [], BUNDLED_MODELS)
        flags = {
            "sources": tuple(source or ()),
            "models_dir": models_dir,
            "detectors": detectors,
            "device": device.value,
            "precision": precision.value,
            "host": host,
            "port": port,
            "token": token,
            "max_peers": max_peers,
            "ice_servers": tuple(ice_server or ()),
            "max_faces": max_faces,
            "stride": stride,
            "detect_every": detect_every,
            "explain": explain,
            "out": out,
            "threshold": threshold,
            "events": None if events_dir is None else EventsConfig(dir=events_dir),
            "webhooks": webhook_configs(webhook),
            "mqtt": None if mqtt is None else MqttConfig(url=mqtt),
        }
        cfg = ServeConfig(**merge_flags(ctx, config, flags, SERVE_PARAMS, serve=True))
        check_bind(cfg.host, cfg.token)
        feed_options = SourceOptions(realtime=True, loop=True, retry=RetryPolicy(attempts=None))
        feeds = open_sources(cfg, feed_options)
        outputs: list[Sink] = event_outputs(cfg.events, cfg.webhooks, cfg.mqtt, feeds)
        if cfg.out is not None:
            outputs.append(JsonlSink(cfg.out))
        options = ServeOptions(host=cfg.host, port=cfg.port, token=cfg.token, max_peers=cfg.max_peers,
                               ice_servers=cfg.ice_servers)
        loaded = ModelSet.load(cfg.models_dir, cfg.device, cfg.precision, cfg.ort, frame_on_lane=cfg.frame_lane)
        serve(loaded, options, cfg.pipeline_options(), feeds=feeds, outputs=outputs,
              face_models=load_detectors(cfg, on_lanes=True))

    guard(body)


def _run_on_ray(ctx: typer.Context, cfg: RunConfig, config: Path | None, flags: dict[str, Any],
                stop: Any) -> tuple[Any, list[str]]:
    """The cluster engine; with --config, SIGHUP re-reads the file's cameras while the job runs."""
    import signal
    import threading

    from dfstream.stream.cluster import import_ray

    import_ray()  # one line naming the extra when Ray is missing, before anything starts
    from dfstream.stream.cluster.ray_run import run_cluster

    if config is None:
        return run_cluster(cfg, stop)
    reload_signal = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: reload_signal.set())
    return run_cluster(cfg, stop, lambda: RunConfig(**merge_flags(ctx, config, flags, RUN_PARAMS)), reload_signal)
