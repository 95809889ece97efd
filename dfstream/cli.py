"""The ``dfstream`` command: thin typer layer that parses into config and calls typed functions."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from dfstream.cli_bench import bench_app
from dfstream.cli_calibrate import calibrate_cmd
from dfstream.cli_common import Device, InputScaleOption, decision_of, guard, state
from dfstream.cli_config import config_app
from dfstream.cli_data import data_app
from dfstream.cli_eval import eval_app
from dfstream.cli_import import import_app
from dfstream.cli_stream import run_cmd, serve_cmd
from dfstream.cli_train import train_app
from dfstream.models.configs import INPUT_SCALE_HELP
from dfstream.stream.contract.exceptions import DfstreamError, InputPathError, ModelLoadError
from dfstream.stream.contract.paths import BUNDLED_MODELS

log = logging.getLogger("dfstream")

app = typer.Typer(
    name="dfstream",
    help="Real-time streaming deepfake detection: train, evaluate and export the frame and clip models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Positive(StrEnum):
    auto = "auto"
    fake = "fake"
    real = "real"


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Full tracebacks instead of one-line errors; MediaPipe's native log lines.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
) -> None:
    from dfstream.stream.native_logs import show_native_logs

    state["debug"] = debug
    show_native_logs(debug)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose or debug else "%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


# ---------------------------------------------------------------- export

EXPORT_TARGETS = {
    ".keras": "frame_cnn (model A) → frame_cnn.onnx",
    ".pth": "clip model (model B) → 3 graphs",
    ".pt": "clip model (model B) → 3 graphs",
}


UNCARDED_CLIP_SIZE = 256
"""Model B's export size for a checkpoint without a card (notebook B's, or an older dfstream's)."""


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Argument(help="A model A '.keras' file or a model B '.pth' state dict.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help="Folder for the ONNX files.")] = Path("out/onnx"),
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Decision threshold on P(fake) stored in metadata.")
    ] = None,
    threshold_from: Annotated[
        Path | None, typer.Option(help="threshold.json written by 'dfstream eval' (F1-optimal on validation).")
    ] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write *.fp16.onnx variants (checked at 2e-2).")] = False,
    positive_class: Annotated[
        Positive, typer.Option(help="Model A only: the class its sigmoid measures; 'auto' reads the model name.")
    ] = Positive.auto,
    img_size: Annotated[
        int | None, typer.Option(min=32, help=f"Model B only: crop side the encoder is exported for. Default: the "
                                 f"side its checkpoint was trained at (its card), {UNCARDED_CLIP_SIZE} without a card.")
    ] = None,
    input_scale: Annotated[InputScaleOption, typer.Option(help=INPUT_SCALE_HELP)] = InputScaleOption.auto,
) -> None:
    """Export to ONNX with dfstream metadata; every graph is checked against its framework first."""

    def body() -> None:
        if not model.is_file():
            raise InputPathError(f"model file not found: {model}")
        suffix = model.suffix.lower()
        if suffix not in EXPORT_TARGETS:
            raise InputPathError(f"{model}: unknown model type '{suffix}'; expected one of {', '.join(EXPORT_TARGETS)}")
        decision = decision_of(threshold, threshold_from)
        if suffix == ".keras":
            from dfstream.export.keras_onnx import export_frame_model
            from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE

            positive = None if positive_class is Positive.auto else positive_class.value
            out = out_dir / FILE_NAME_OF_ROLE["frame_cnn"]
            scale = input_scale.value
            if scale == "auto" and decision.input_scale is not None:
                log.info("input scale %s from %s", decision.input_scale, threshold_from)
                scale = decision.input_scale
            files = export_frame_model(
                model, out, decision.threshold, cast(Any, positive), fp16, decision.calibration, cast(Any, scale)
            )
        else:
            from dfstream.export.torch_onnx import export_clip_model
            from dfstream.models.checkpoint_cards import trained_img_size

            trained = trained_img_size(model)
            size = img_size or trained or UNCARDED_CLIP_SIZE
            if trained is not None and size != trained:
                log.warning("--img-size %d: %s was trained on %d-px crops (its card)", size, model.name, trained)
            files = export_clip_model(model, out_dir, decision.threshold, size, fp16, decision.calibration)
        for f in files:
            typer.echo(f"wrote {f.path} ({f.role}, {f.precision}, max abs diff {f.max_abs_diff:.2e})")

    guard(body)


@app.command("quantize")
def quantize_cmd(
    models: Annotated[Path, typer.Argument(help="Folder with frame_cnn.onnx and clip_encoder.onnx (fp32).")],
    calibration: Annotated[
        list[Path] | None,
        typer.Option(help="A face video, or a folder of face images cut by the data build (e.g. "
                     "cache/dataset/frames/train); repeat it to mix sources. Default: the bundled sample clip."),
    ] = None,
    crops: Annotated[int, typer.Option(min=8, help="Face crops to use in all (half calibrate, half check).")] = 64,
    only: Annotated[
        list[str] | None,
        typer.Option(help="Quantise only this graph (frame_cnn or clip_encoder); repeat for both. Default: both."),
    ] = None,
    held_out: Annotated[
        Path | None,
        typer.Option(help="Folder of real/ and fake/ face images (e.g. cache/dataset/frames/test): model A's "
                     "int8 AUC there must stay within 0.01 of fp32's."),
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Write fp16 variants (for CUDA) instead of int8: no calibration needed; "
                           "each checked against fp32 on the CPU.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="With --fp16: write into this folder, beside copies of MODELS' graphs "
                                  "(default: MODELS itself).")
    ] = None,
) -> None:
    """Write int8 variants of model A and the clip encoder (faster on CPU), or fp16 ones (for CUDA); each is
    checked against fp32."""

    def body() -> None:
        if fp16:
            from dfstream.export.fp16_variants import fp16_folder

            for f in fp16_folder(models, out):
                typer.echo(f"wrote {f.path} ({f.role}, fp16, max abs diff {f.max_abs_diff:.2e})")
            return
        if out is not None:
            raise DfstreamError("--out goes with --fp16; int8 variants are written beside their fp32 graphs")
        from dfstream.export.quantize import QUANTIZED_ROLES, calibration_crops, quantize_folder
        from dfstream.stream.contract.paths import SAMPLE_CLIP

        sources = calibration or [SAMPLE_CLIP]
        quantize_folder(models, calibration_crops(sources, crops), held_out, only or QUANTIZED_ROLES)  # prints

    guard(body)


app.command("calibrate")(calibrate_cmd)


@app.command("inspect")
def inspect_cmd(
    model: Annotated[Path, typer.Argument(help="An ONNX file written by 'dfstream export', or a checkpoint of "
                                          "'dfstream train' (.pth, .keras).")],
    device: Annotated[Device, typer.Option(help="Provider to open it with: auto, cpu or cuda.")] = Device.cpu,
) -> None:
    """Print a model's dfstream metadata and the provider it runs on, or a checkpoint's card."""

    def body() -> None:
        if model.suffix.lower() in (".pth", ".keras"):
            _print_card(model)
            return
        from dfstream.stream.ort_sessions import load_model, read_metadata

        meta = read_metadata(model)
        loaded = load_model(model, meta.role, device.value)
        for key, value in meta.to_props().items():
            typer.echo(f"{key} = {value}")
        typer.echo(f"provider = {loaded.provider}")

    guard(body)


def _print_card(checkpoint: Path) -> None:
    import json

    from dfstream.models.checkpoint_cards import read_card

    if not checkpoint.is_file():
        raise InputPathError(f"checkpoint not found: {checkpoint}")
    card = read_card(checkpoint)
    if card is None:
        raise ModelLoadError(f"{checkpoint}: no card (the notebooks' files and dfstream's before cards have none)")
    typer.echo(json.dumps(card, indent=2, sort_keys=True))


@app.command("doctor")
def doctor_cmd(
    models: Annotated[Path | None, typer.Option(help="Model folder to check. Default: the bundled models.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder that runs will write to.")] = Path("out"),
    device: Annotated[Device, typer.Option(help="Provider to load the models with: auto, cpu or cuda.")] = Device.auto,
) -> None:
    """What a bug report needs (versions, GPU, models, Debian parts); exit 1 when the runtime cannot run."""

    def body() -> None:
        from dfstream.doctor import diagnose
        from dfstream.stream.contract.paths import SAMPLE_CLIP

        report = diagnose(models or BUNDLED_MODELS, out, device.value, SAMPLE_CLIP)
        typer.echo(report.text())
        if report.failures:
            reasons = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
            typer.echo(f"dfstream doctor: the runtime cannot run here: {reasons}", err=True)
            raise typer.Exit(1)
        typer.echo("dfstream doctor: the runtime can run here")

    guard(body)


app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.command("run")(run_cmd)
app.command("serve")(serve_cmd)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(import_app, name="import")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
