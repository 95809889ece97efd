"""``dfstream bench models|pipeline|soak``: thin commands over ``benchmarks/suite.py``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import FRAME_LANE_HELP, Device, Precision, default_of, guard
from dfstream.stream.run_config import RunConfig

bench_app = typer.Typer(
    help="Measure latency and throughput: models, the whole pipeline, a long soak.", no_args_is_help=True
)

ModelsOpt = Annotated[
    Path | None,
    typer.Option(help="Folder of ONNX graphs: the bundled kind, or imported detectors ('dfstream import'). "
                 "Default: product-size graphs exported once into cache/bench-models."),
]
BundledModelsOpt = Annotated[Path | None, typer.Option(help="Folder of ONNX graphs. Default: the bundled models.")]
OutOpt = Annotated[Path | None, typer.Option(help="Report folder. Default: benchmarks/results/<kind>-<time>.")]
DeviceOpt = Annotated[Device, typer.Option(help="auto (CPU, and CUDA when present), cpu or cuda.")]
PrecisionOpt = Annotated[Precision, typer.Option(help="fp32, fp16 or int8 graph variants (see 'dfstream quantize').")]
ClipOpt = Annotated[Path | None, typer.Option(help="Face clip to stream. Default: the bundled sample clip.")]


def _out(out: Path | None, kind: str, make: bool = True) -> Path:
    folder = out or Path("benchmarks") / "results" / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"
    if make:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"{what} must be positive integers, got {text!r}")
    return values


def _clip(clip: Path | None) -> Path:
    from dfstream.stream.contract.exceptions import InputPathError
    from dfstream.stream.contract.paths import SAMPLE_CLIP

    clip = clip or SAMPLE_CLIP
    if not clip.is_file():
        raise InputPathError(f"clip not found: {clip}")
    return clip


def _report(title: str, markdown: str, files: list[Path]) -> None:
    typer.echo(f"\n## {title}\n\n{markdown}")
    typer.echo("wrote " + ", ".join(str(f) for f in files))


@bench_app.command("models")
def bench_models_cmd(
    models: ModelsOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = Device.auto,
    batches: Annotated[str, typer.Option(help="Batch sizes, comma-separated.")] = "1,4,16",
    seconds: Annotated[float, typer.Option(help="Minimum timed duration per row (after warm-up).")] = 3.0,
    native: Annotated[bool, typer.Option(help="Also time Keras/TF (model A) and torch eager (model B).")] = True,
    quick: Annotated[bool, typer.Option(help="Batches 1,4 and 0.5 s per row.")] = False,
) -> None:
    """Each graph per provider, precision and batch; native frameworks beside; incremental vs naive clip cost."""

    def body() -> None:
        from dfstream.benchmarks.suite import bench_models_dir, run_models

        b = [1, 4] if quick else _ints(batches, "--batches")
        written = run_models(bench_models_dir(models), _out(out, "models"), device.value, b,
                             0.5 if quick else seconds, native)
        _report("models", written.markdown, written.files)

    guard(body)


@bench_app.command("pipeline")
def bench_pipeline_cmd(
    models: ModelsOpt = None,
    clip: ClipOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = Device.auto,
    streams: Annotated[str, typer.Option(help="Stream counts to run, comma-separated.")] = "1,2,4",
    modes: Annotated[str, typer.Option(help="'paced' (clip fps, drops counted) and/or 'fast' (no drops).")] = (
        "paced,fast"
    ),
    duration: Annotated[float | None, typer.Option(help="Cap each run at this many seconds.")] = None,
    precision: PrecisionOpt = Precision.fp32,
    stride: Annotated[
        int | None, typer.Option(min=1, help="Model A on every k-th frame, fixed. Default: the deadline scheduler.")
    ] = None,
    quick: Annotated[bool, typer.Option(help="1 and 2 streams, each run capped at 4 s.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Fetch and record model A's attention grid too.")] = False,
    overlap: Annotated[bool, typer.Option("--overlap/--no-overlap", help="Find the next frames' faces while the "
                                          "models score the last ones.")] = default_of(RunConfig, "overlap"),
    frame_lane: Annotated[bool, typer.Option("--frame-lane/--no-frame-lane", help=FRAME_LANE_HELP)] = True,
) -> None:
    """The whole stream on a face clip: per-stage latency, capture→score percentiles, fps, drops."""

    def body() -> None:
        from dfstream.benchmarks.pipeline_bench import MODES
        from dfstream.benchmarks.suite import bench_models_dir, run_pipeline

        chosen = [m.strip() for m in modes.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in MODES]
        if unknown or not chosen:
            raise typer.BadParameter(f"--modes: {unknown or modes!r} not among {', '.join(MODES)}")
        n = [1, 2] if quick else _ints(streams, "--streams")
        written = run_pipeline(bench_models_dir(models), _clip(clip), _out(out, "pipeline"), device.value, n,
                               chosen, 4.0 if quick else duration, precision.value, stride, explain, overlap,
                               frame_lane)
        _report("pipeline", written.markdown, written.files)

    guard(body)


@bench_app.command("cluster")
def bench_cluster_cmd(
    models: BundledModelsOpt = None,
    clip: ClipOpt = None,
    out: OutOpt = None,
    cameras: Annotated[str, typer.Option(help="Camera counts to run, comma-separated.")] = "1,2,4,8",
    duration: Annotated[float, typer.Option(min=5, help="Seconds per run and engine.")] = 30.0,
    precision: PrecisionOpt = Precision.auto,
) -> None:
    """N cameras in one process against N Ray camera workers with a shared scorer (local Ray), and the hop alone."""

    def body() -> None:
        from dfstream.benchmarks.suite import run_cluster_bench
        from dfstream.stream.cluster import import_ray
        from dfstream.stream.contract.paths import BUNDLED_MODELS

        import_ray()
        written = run_cluster_bench(models or BUNDLED_MODELS, _clip(clip), _out(out, "cluster"),
                                    _ints(cameras, "--cameras"), duration, precision.value)
        _report("cluster", written.markdown, written.files)

    guard(body)


@bench_app.command("explain")
def bench_explain_cmd(
    models: BundledModelsOpt = None,
    clip: ClipOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = Device.cpu,
    seconds: Annotated[float, typer.Option(min=0.5, help="Seconds of timing per step.")] = 3.0,
) -> None:
    """What --explain adds per face: the attention output, the grid, the record, the heatmap."""

    def body() -> None:
        from dfstream.benchmarks.suite import run_explain
        from dfstream.stream.contract.paths import BUNDLED_MODELS

        written = run_explain(models or BUNDLED_MODELS, _clip(clip), _out(out, "explain"), device.value, seconds)
        _report("explain", written.markdown, written.files)

    guard(body)


@bench_app.command("ort")
def bench_ort_cmd(
    models: BundledModelsOpt = None,
    clip: ClipOpt = None,
    out: OutOpt = None,
    seconds: Annotated[float, typer.Option(min=0.1, help="Seconds of timing per model and setting.")] = 1.0,
    pipeline: Annotated[float, typer.Option(min=0, help="Seconds of paced pipeline per setting (0: skip).")] = 8.0,
    settings: Annotated[str, typer.Option(help="Comma-separated settings to compare (default: all).")] = "",
) -> None:
    """ONNX Runtime CPU settings (threads, spinning, optimisation, arena, denormals): models and pipeline."""

    def body() -> None:
        from dfstream.benchmarks.ort_bench import VARIANTS
        from dfstream.benchmarks.suite import run_ort
        from dfstream.stream.contract.paths import BUNDLED_MODELS

        chosen = [v.strip() for v in settings.split(",") if v.strip()] or list(VARIANTS)
        unknown = [v for v in chosen if v not in VARIANTS]
        if unknown:
            raise typer.BadParameter(f"--settings: {unknown} not among {', '.join(VARIANTS)}")
        written = run_ort(models or BUNDLED_MODELS, _clip(clip), _out(out, "ort"), seconds, pipeline or None, chosen)
        _report("ort", written.markdown, written.files)

    guard(body)


@bench_app.command("soak")
def bench_soak_cmd(
    minutes: Annotated[float, typer.Option(help="How long to run.")] = 10.0,
    models: ModelsOpt = None,
    clip: ClipOpt = None,
    out: OutOpt = None,
    device: DeviceOpt = Device.auto,
    interval: Annotated[float, typer.Option(help="Seconds per reported interval.")] = 60.0,
    precision: PrecisionOpt = Precision.fp32,
) -> None:
    """One paced, looping stream for N minutes: RSS and p99 per interval, drift first→last."""

    def body() -> None:
        from dfstream.benchmarks.suite import bench_models_dir, run_soak

        written = run_soak(bench_models_dir(models), _clip(clip), _out(out, "soak"), device.value, minutes, interval,
                           precision.value)
        _report("soak", written.markdown, written.files)

    guard(body)


@bench_app.command("gpu-check")
def bench_gpu_check_cmd(
    models: BundledModelsOpt = None,
    out: OutOpt = None,
    seconds: Annotated[float, typer.Option(help="Minimum timed duration per batch size.")] = 1.0,
) -> None:
    """First run on a GPU machine: each graph on CUDA (TensorRT when it loads) against the CPU, from two
    threads, with CUDA graphs, timed at batches 1/4/16/64; refuses in one line where no GPU serves."""

    def body() -> None:
        from dfstream.benchmarks.gpu_check import gpu_check, markdown
        from dfstream.stream.contract.paths import BUNDLED_MODELS
        from dfstream.stream.ort_sessions import select_providers

        select_providers("cuda")  # refuse before making a report folder
        target = _out(out, "gpu-check", make=False)  # made once the graphs ran on CUDA (gpu_check)
        checks = gpu_check(models or BUNDLED_MODELS, target, seconds)
        _report("gpu-check", markdown(checks), [target / "gpu_check.json", target / "gpu_check.md"])

    guard(body)

