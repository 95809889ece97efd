"""The ``dfstream`` command: thin typer layer that parses into config and calls typed functions."""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from dfstream.cli_bench import bench_app
from dfstream.cli_calibrate import calibrate_cmd
from dfstream.cli_common import Device, ModelsDir, OrtDevice, Precision, default_of, guard, state
from dfstream.cli_config import config_app
from dfstream.cli_data import data_app
from dfstream.cli_eval_compare import eval_compare_cmd
from dfstream.cli_eval_stream import eval_false_alarms_cmd, eval_sensitivity_cmd, eval_streams_cmd
from dfstream.cli_stream import run_cmd, serve_cmd
from dfstream.config import (
    EvalBundledConfig,
    EvalClipConfig,
    EvalCnnConfig,
    EvalKindsConfig,
    TrainClipConfig,
    TrainCnnConfig,
)
from dfstream.exceptions import InputPathError
from dfstream.models.card_tables import TABLES
from dfstream.paths import BUNDLED_MODELS

if TYPE_CHECKING:
    from dfstream.models.calibration import Decision

log = logging.getLogger("dfstream")

app = typer.Typer(
    name="dfstream",
    help="Real-time streaming deepfake detection: train, evaluate and export the frame and clip models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
train_app = typer.Typer(help="Train model A (frame CNN) or model B (clip model).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate a trained model and write metrics, plots and reports.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


class Positive(StrEnum):
    auto = "auto"
    fake = "fake"
    real = "real"


class InputScaleOption(StrEnum):
    auto = "auto"
    zero_one = "0-1"
    zero_255 = "0-255"


INPUT_SCALE_HELP = ("Model A only: pixel scale it was trained on. 'auto' feeds face crops at both and keeps "
                    "the scale whose answers vary.")


class Split(StrEnum):
    val = "val"
    all = "all"


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


def _decision(threshold: float | None, threshold_from: Path | None) -> Decision:
    from dfstream.models.calibration import Decision, read_decision

    if threshold is not None and threshold_from is not None:
        raise InputPathError("give --threshold or --threshold-from, not both")
    if threshold_from is not None:
        decision = read_decision(threshold_from)
        log.info("threshold %.4f (raw %.4f), calibration (%.3f, %.3f) from %s", decision.threshold,
                 decision.threshold_raw, *decision.calibration, threshold_from)
        return decision
    if threshold is None:
        log.warning(
            "no --threshold given: writing 0.5; run 'dfstream eval' and pass --threshold-from its threshold.json"
        )
        return Decision(0.5, 0.5)
    return Decision(threshold, threshold)


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
    img_size: Annotated[int, typer.Option(min=32, help="Model B only: crop side the encoder is exported for.")] = 256,
    input_scale: Annotated[InputScaleOption, typer.Option(help=INPUT_SCALE_HELP)] = InputScaleOption.auto,
) -> None:
    """Export to ONNX with dfstream metadata; every graph is checked against its framework first."""

    def body() -> None:
        if not model.is_file():
            raise InputPathError(f"model file not found: {model}")
        suffix = model.suffix.lower()
        if suffix not in EXPORT_TARGETS:
            raise InputPathError(f"{model}: unknown model type '{suffix}'; expected one of {', '.join(EXPORT_TARGETS)}")
        decision = _decision(threshold, threshold_from)
        if suffix == ".keras":
            from dfstream.export.keras_onnx import export_frame_model
            from dfstream.export.metadata import FILE_NAME_OF_ROLE

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

            files = export_clip_model(model, out_dir, decision.threshold, img_size, fp16, decision.calibration)
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
) -> None:
    """Write int8 variants of model A and the clip encoder (faster on CPU); each is checked against fp32."""

    def body() -> None:
        from dfstream.export.quantize import QUANTIZED_ROLES, calibration_crops, quantize_folder
        from dfstream.paths import SAMPLE_CLIP

        sources = calibration or [SAMPLE_CLIP]
        quantize_folder(models, calibration_crops(sources, crops), held_out, only or QUANTIZED_ROLES)  # prints

    guard(body)


app.command("calibrate")(calibrate_cmd)


@app.command("inspect")
def inspect_cmd(
    model: Annotated[Path, typer.Argument(help="An ONNX file written by 'dfstream export'.")],
    device: Annotated[Device, typer.Option(help="Provider to open it with: auto, cpu or cuda.")] = Device.cpu,
) -> None:
    """Print a model's dfstream metadata and the provider it runs on."""

    def body() -> None:
        from dfstream.stream.runtime import load_model, read_metadata

        meta = read_metadata(model)
        loaded = load_model(model, meta.role, device.value)
        for key, value in meta.to_props().items():
            typer.echo(f"{key} = {value}")
        typer.echo(f"provider = {loaded.provider}")

    guard(body)


@app.command("doctor")
def doctor_cmd(
    models: Annotated[Path | None, typer.Option(help="Model folder to check. Default: the bundled models.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder that runs will write to.")] = Path("out"),
    device: Annotated[Device, typer.Option(help="Provider to load the models with: auto, cpu or cuda.")] = Device.auto,
) -> None:
    """What a bug report needs (versions, GPU, models, Debian parts); exit 1 when the runtime cannot run."""

    def body() -> None:
        from dfstream.doctor import diagnose
        from dfstream.paths import SAMPLE_CLIP

        report = diagnose(models or BUNDLED_MODELS, out, device.value, SAMPLE_CLIP)
        typer.echo(report.text())
        if report.failures:
            reasons = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
            typer.echo(f"dfstream doctor: the runtime cannot run here: {reasons}", err=True)
            raise typer.Exit(1)
        typer.echo("dfstream doctor: the runtime can run here")

    guard(body)


# ---------------------------------------------------------------- train / eval


@train_app.command("cnn")
def train_cnn_cmd(
    data: Annotated[Path, typer.Option(help="Folder with train/ val/ test/, each holding real/ and fake/.")],
    out: Annotated[Path, typer.Option(help="Output folder for best_model.keras, last_model.keras, history.csv.")],
    img_size: Annotated[int, typer.Option(help="Square input side.")] = default_of(TrainCnnConfig, "img_size"),
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = default_of(TrainCnnConfig, "batch_size"),
    epochs: Annotated[
        int, typer.Option(help="Maximum epochs (early stopping on val AUC, patience 5).")
    ] = default_of(TrainCnnConfig, "epochs"),
    lr: Annotated[
        float, typer.Option(help="Adam learning rate (halved after 3 epochs without val-loss gain).")
    ] = default_of(TrainCnnConfig, "lr"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = default_of(TrainCnnConfig, "seed"),
    teacher: Annotated[
        Path | None, typer.Option(help="Model B run folder (last_model.pth, probe.pth) to distil from.")
    ] = None,
    faces: Annotated[
        list[Path] | None,
        typer.Option(help="Face bank for the distillation pool (faces/train.npz); repeat to add more faces."),
    ] = None,
    pool: Annotated[
        int, typer.Option(help="On-the-fly samples in the distillation pool.")
    ] = default_of(TrainCnnConfig, "pool"),
    hard_weight: Annotated[
        float, typer.Option(help="Share of the hard label in the target (rest: teacher).")
    ] = default_of(TrainCnnConfig, "hard_weight"),
    fixed_share: Annotated[
        float, typer.Option(help="Share of the distillation pool from the --data train frames (0: none).")
    ] = default_of(TrainCnnConfig, "fixed_share"),
) -> None:
    """Train model A (CBAM CNN) on notebook A's folder layout, or distilled from model B on fakes made on the fly."""

    def body() -> None:
        from dfstream.models.train_cnn import train_cnn

        cfg = TrainCnnConfig(
            data_dir=data,
            out_dir=out,
            img_size=img_size,
            batch_size=batch_size,
            epochs=epochs,
            lr=lr,
            seed=seed,
            teacher=teacher,
            faces=tuple(faces or ()),
            pool=pool,
            hard_weight=hard_weight,
            fixed_share=fixed_share,
        )
        typer.echo(f"best model: {train_cnn(cfg)}")

    guard(body)


@train_app.command("clip")
def train_clip_cmd(
    data: Annotated[Path, typer.Option(help="Class folders (original/ = real) of {video}_{i}.jpg + {video}_{i}.npy.")],
    out: Annotated[Path, typer.Option(help="Output folder for mediapipe_model.pth (best val F1), last_model.pth.")],
    img_size: Annotated[
        int, typer.Option(help="Crop side the frames are resized to.")
    ] = default_of(TrainClipConfig, "img_size"),
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = default_of(TrainClipConfig, "batch_size"),
    epochs: Annotated[int, typer.Option(help="Epochs.")] = default_of(TrainClipConfig, "epochs"),
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = default_of(TrainClipConfig, "lr"),
    val_fraction: Annotated[
        float, typer.Option(help="Share of videos held out for validation.")
    ] = default_of(TrainClipConfig, "val_fraction"),
    val_data: Annotated[
        Path | None,
        typer.Option(help="Separate validation class folders (e.g. held-out identities); then --data is all training."),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the video split and of training.")
    ] = default_of(TrainClipConfig, "seed"),
    imagenet_weights: Annotated[
        Path | None, typer.Option(help="Local torchvision EfficientNet-B0 state dict; none: random init.")
    ] = None,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = default_of(TrainClipConfig, "workers"),
    pretrain_epochs: Annotated[
        int, typer.Option(help="Frame-level encoder epochs first (one label per frame, not per 16: far cheaper).")
    ] = default_of(TrainClipConfig, "pretrain_epochs"),
    pretrain_frames: Annotated[
        int, typer.Option(help="Random frames per clip in each pretrain epoch.")
    ] = default_of(TrainClipConfig, "pretrain_frames"),
    faces: Annotated[
        list[Path] | None,
        typer.Option(
            help="Face bank (the data build's faces/train.npz): every training fake is made on the fly. Repeat to "
            "add more faces (faces/thumbnails.npz)."
        ),
    ] = None,
    activation: Annotated[
        str, typer.Option(help="Encoder activation: silu (B0) or relu6 (matches Lite0).")
    ] = default_of(TrainClipConfig, "activation"),
    steps: Annotated[
        int, typer.Option(help="On the fly: frame batches of the encoder fine-tune.")
    ] = default_of(TrainClipConfig, "steps"),
    frame_batch: Annotated[
        int, typer.Option(help="On the fly: frames per batch.")
    ] = default_of(TrainClipConfig, "frame_batch"),
    eval_every: Annotated[
        int, typer.Option(help="On the fly: steps between validation passes.")
    ] = default_of(TrainClipConfig, "eval_every"),
    head_clips: Annotated[
        int, typer.Option(help="On the fly: clips made for the head's training.")
    ] = default_of(TrainClipConfig, "head_clips"),
    exclude: Annotated[
        str | None, typer.Option(help="On the fly: a variant never made (e.g. swap/piecewise), to test on it.")
    ] = None,
    fixed_share: Annotated[
        float, typer.Option(help="On the fly: share of each batch from frames of the --data clips (0: none).")
    ] = default_of(TrainClipConfig, "fixed_share"),
    freeze_blocks: Annotated[
        int, typer.Option(help="On the fly: encoder blocks kept at their start weights (1: stem, 2-8: stages).")
    ] = default_of(TrainClipConfig, "freeze_blocks"),
    weight_average: Annotated[
        float, typer.Option(help="On the fly: decay of a running weight average validated and kept (0: off).")
    ] = default_of(TrainClipConfig, "weight_average"),
    paired: Annotated[
        bool, typer.Option(help="On the fly: each fake beside the genuine picture it was made from, framed alike.")
    ] = default_of(TrainClipConfig, "paired"),
    boundary_weight: Annotated[
        float, typer.Option(help="On the fly: weight of the loss that locates each fake's blended region (0: off).")
    ] = default_of(TrainClipConfig, "boundary_weight"),
    sharpness_both_ways: Annotated[
        bool,
        typer.Option("--sharpness-both-ways",
                     help="On the fly: sharpen or blur whole pictures of both classes, fixed clips' frames too."),
    ] = default_of(TrainClipConfig, "sharpness_both_ways"),
    denoise_share: Annotated[
        float, typer.Option(help="On the fly: share of pictures of both classes, fixed clips' frames too, denoised.")
    ] = default_of(TrainClipConfig, "denoise_share"),
    colour_share: Annotated[
        float, typer.Option(help="On the fly: share of pictures of both classes, fixed clips' frames too, made grey, "
                            "paler or more vivid.")
    ] = default_of(TrainClipConfig, "colour_share"),
    encoder_soup: Annotated[
        list[Path] | None,
        typer.Option(help="On the fly: a run's last_model.pth; repeat: their encoders averaged, not fine-tuned "
                     "(--steps and the fine-tune's options go unused), and the head trained on the average."),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Where model B trains: auto (CUDA when torch sees a GPU), cpu or cuda. Data loading "
                          "and on-the-fly fakes stay on the CPU (--workers processes).")
    ] = default_of(TrainClipConfig, "device"),
) -> None:
    """Train model B (EfficientNet-B0 + BiLSTM) on notebook B's folder layout, or on fakes made on the fly."""

    def body() -> None:
        from dfstream.models.train_clip import train_clip

        cfg = TrainClipConfig(
            data_dir=data,
            out_dir=out,
            img_size=img_size,
            batch_size=batch_size,
            epochs=epochs,
            lr=lr,
            val_fraction=val_fraction,
            val_dir=val_data,
            seed=seed,
            imagenet_weights=imagenet_weights,
            workers=workers,
            pretrain_epochs=pretrain_epochs,
            pretrain_frames=pretrain_frames,
            faces=tuple(faces or ()),
            activation=activation,
            steps=steps,
            frame_batch=frame_batch,
            eval_every=eval_every,
            head_clips=head_clips,
            exclude=exclude,
            fixed_share=fixed_share,
            freeze_blocks=freeze_blocks,
            weight_average=weight_average,
            paired=paired,
            boundary_weight=boundary_weight,
            sharpness_both_ways=sharpness_both_ways,
            denoise_share=denoise_share,
            colour_share=colour_share,
            encoder_soup=tuple(encoder_soup or ()),
            device=device,
        )
        typer.echo(f"best model: {train_clip(cfg)}")

    guard(body)


def _print_report(report: Any, out: Path) -> None:
    typer.echo(
        f"threshold {report.threshold:.4f} | accuracy {report.accuracy:.4f} | precision {report.precision:.4f} | "
        f"recall {report.recall:.4f} | F1 {report.f1:.4f} | AUC {report.auc_text} | n {report.n} (fake {report.n_fake})"
    )
    typer.echo(f"reports in {out}")


@eval_app.command("cnn")
def eval_cnn_cmd(
    model: Annotated[Path, typer.Option(help="Model A .keras file (dfstream's or notebook A's).")],
    data: Annotated[Path, typer.Option(help="Folder with val/ (threshold choice) and test/ (report).")],
    out: Annotated[Path, typer.Option(help="Output folder for metrics, CSV, plots and Grad-CAM overlays.")],
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = default_of(EvalCnnConfig, "batch_size"),
    gradcam_samples: Annotated[
        int, typer.Option(help="Grad-CAM overlays to write from test.")
    ] = default_of(EvalCnnConfig, "gradcam_samples"),
    max_fpr: Annotated[
        float | None,
        typer.Option(help="Cap on the share of genuine samples the chosen threshold may flag (e.g. 0.05)."),
    ] = None,
    input_scale: Annotated[
        InputScaleOption, typer.Option(help=INPUT_SCALE_HELP)
    ] = default_of(EvalCnnConfig, "input_scale"),
) -> None:
    """Evaluate model A: F1-optimal threshold on val, full report and Grad-CAM on test."""

    def body() -> None:
        from dfstream.models.train_cnn import evaluate_cnn

        cfg = EvalCnnConfig(
            model=model,
            data_dir=data,
            out_dir=out,
            batch_size=batch_size,
            gradcam_samples=gradcam_samples,
            max_fpr=max_fpr,
            input_scale=input_scale.value,
        )
        _print_report(evaluate_cnn(cfg), out)

    guard(body)


@eval_app.command("clip")
def eval_clip_cmd(
    model: Annotated[Path, typer.Option(help="Model B state dict (.pth).")],
    data: Annotated[Path, typer.Option(help="Class folders of {video}_{i}.jpg + .npy.")],
    out: Annotated[Path, typer.Option(help="Output folder for metrics, CSV, classification report and plots.")],
    img_size: Annotated[int, typer.Option(help="Crop side.")] = default_of(EvalClipConfig, "img_size"),
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = default_of(EvalClipConfig, "batch_size"),
    split: Annotated[
        Split, typer.Option(help="'val': the training run's held-out videos; 'all': every video.")
    ] = default_of(EvalClipConfig, "split"),
    val_fraction: Annotated[
        float, typer.Option(help="Must match training to reproduce its val split.")
    ] = default_of(EvalClipConfig, "val_fraction"),
    seed: Annotated[
        int, typer.Option(help="Must match training to reproduce its val split.")
    ] = default_of(EvalClipConfig, "seed"),
    threshold: Annotated[float | None, typer.Option(help="Fixed threshold; default: F1-optimal.")] = None,
    threshold_from: Annotated[
        Path | None, typer.Option(help="Fixed threshold from a threshold.json (e.g. the val run's, to score test).")
    ] = None,
    max_fpr: Annotated[
        float | None,
        typer.Option(help="Cap on the share of genuine samples the chosen threshold may flag (e.g. 0.05)."),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Where model B runs: auto (CUDA when torch sees a GPU), cpu or cuda.")
    ] = default_of(EvalClipConfig, "device"),
    workers: Annotated[
        int, typer.Option(help="DataLoader worker processes reading the clips.")
    ] = default_of(EvalClipConfig, "workers"),
) -> None:
    """Evaluate model B: classification report, AUC, ROC / confusion / threshold plots."""

    def body() -> None:
        from dfstream.models.train_clip import evaluate_clip

        given = threshold is not None or threshold_from is not None
        fixed = _decision(threshold, threshold_from).threshold_raw if given else None

        cfg = EvalClipConfig(
            model=model,
            data_dir=data,
            out_dir=out,
            img_size=img_size,
            batch_size=batch_size,
            split=split.value,
            val_fraction=val_fraction,
            seed=seed,
            threshold=fixed,
            max_fpr=max_fpr,
            device=device,
            workers=workers,
        )
        _print_report(evaluate_clip(cfg), out)

    guard(body)


@eval_app.command("kinds")
def eval_kinds_cmd(
    model: Annotated[Path, typer.Option(help="Model B state dict (.pth).")],
    faces: Annotated[Path, typer.Option(help="Face bank of people never trained on (the build's faces/test.npz).")],
    out: Annotated[Path, typer.Option(help="Output folder for kinds.json.")],
    img_size: Annotated[int, typer.Option(help="Crop side.")] = default_of(EvalKindsConfig, "img_size"),
    genuine_clips: Annotated[
        int, typer.Option(help="Genuine clips every kind is ranked against.")
    ] = default_of(EvalKindsConfig, "genuine_clips"),
    clips_per_kind: Annotated[
        int, typer.Option(help="Fake clips of each kind (sbi, swap/<warp>).")
    ] = default_of(EvalKindsConfig, "clips_per_kind"),
    seed: Annotated[int, typer.Option(help="Seed of the clips made.")] = default_of(EvalKindsConfig, "seed"),
) -> None:
    """Model B's AUC per manipulation kind, on clips made on the fly from held-out people's faces."""

    def body() -> None:
        from dfstream.models.eval_kinds import evaluate_kinds, markdown

        cfg = EvalKindsConfig(model=model, faces=faces, out_dir=out, img_size=img_size, genuine_clips=genuine_clips,
                              clips_per_kind=clips_per_kind, seed=seed)
        typer.echo(markdown(evaluate_kinds(cfg)))
        typer.echo(f"scores in {out / 'kinds.json'}")

    guard(body)


@eval_app.command("bundled")
def eval_bundled_cmd(
    data: Annotated[Path, typer.Option(help="A data build (dfstream data build --out DIR): its val and test splits.")],
    out: Annotated[Path, typer.Option(help="Reports in make models' layout: model-a/eval, model-b/{val,test}.")],
    models: ModelsDir = BUNDLED_MODELS,
    precision: Annotated[
        Precision, typer.Option(help="Graph variants, as 'run' picks them.")
    ] = default_of(EvalBundledConfig, "precision"),
    device: OrtDevice = default_of(EvalBundledConfig, "device"),
) -> None:
    """The shipped ONNX graphs (their calibration and thresholds) scored on a data build's labelled splits."""

    def body() -> None:
        from dfstream.models.eval_bundled import evaluate_bundled

        cfg = EvalBundledConfig(models=models, data_dir=data, out_dir=out, precision=precision.value,
                                device=device.value)
        r = evaluate_bundled(cfg)
        for role, text in r.files.items():
            typer.echo(f"{role}: {text}")
        for name, report in (("model A, test frames", r.frame), ("model B, test clips", r.clip)):
            typer.echo(f"{name}: AUC {report.auc_text} | F1 {report.f1:.4f} | n {report.n} (fake {report.n_fake})")
        if r.clip_within_face_auc is not None:
            typer.echo(f"model B, test clips, AUC within each face (mean): {r.clip_within_face_auc:.4f}")
        typer.echo(f"reports in {out}; the card's tables: dfstream eval card {out} [--table fusion]")

    guard(body)


CardTable = StrEnum("CardTable", {name: name for name in TABLES})  # type: ignore[misc]  # members from TABLES
"""The model card's tables, named once in ``card_tables.TABLES``."""
CARD_MODELS = CardTable("models")


@eval_app.command("card")
def eval_card_cmd(
    runs: Annotated[Path, typer.Argument(help="The runs folder of 'make models' or of one of the card's experiments.")],
    table: Annotated[CardTable, typer.Option(help="Which of the model card's tables.")] = CARD_MODELS,
) -> None:
    """Print a model card table (markdown) from the evaluation reports, so the card shows what was measured."""

    def body() -> None:
        if not runs.is_dir():
            raise InputPathError(f"runs folder not found: {runs}")
        typer.echo("\n".join(TABLES[table.value](runs)))

    guard(body)


eval_app.command("compare")(eval_compare_cmd)
eval_app.command("false-alarms")(eval_false_alarms_cmd)
eval_app.command("streams")(eval_streams_cmd)
eval_app.command("sensitivity")(eval_sensitivity_cmd)
app.command("run")(run_cmd)
app.command("serve")(serve_cmd)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
