"""``dfstream eval``: a trained model's metrics, plots and reports, and the model card's tables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from dfstream.cli_common import (
    Device,
    InputScaleOption,
    Precision,
    decision_of,
    default_of,
    guard,
    option_of,
)
from dfstream.cli_eval_compare import eval_compare_cmd
from dfstream.cli_eval_stream import eval_false_alarms_cmd, eval_sensitivity_cmd, eval_streams_cmd
from dfstream.models.card_tables import TABLES
from dfstream.models.configs import EvalBundledConfig, EvalClipConfig, EvalCnnConfig, EvalCrossConfig, EvalKindsConfig
from dfstream.models.data.splits import SPLITS
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.paths import BUNDLED_MODELS

eval_app = typer.Typer(help="Evaluate a trained model and write metrics, plots and reports.", no_args_is_help=True)


class Split(StrEnum):
    val = "val"
    all = "all"


def _print_report(report: Any, out: Path) -> None:
    typer.echo(
        f"threshold {report.threshold:.4f} | accuracy {report.accuracy:.4f} | precision {report.precision:.4f} | "
        f"recall {report.recall:.4f} | F1 {report.f1:.4f} | AUC {report.auc_text} | n {report.n} (fake {report.n_fake})"
    )
    typer.echo(f"reports in {out}")


@eval_app.command("cnn")
def eval_cnn_cmd(
    model: Annotated[Path, option_of(EvalCnnConfig, "model")],
    data: Annotated[Path, option_of(EvalCnnConfig, "data_dir")],
    out: Annotated[Path, option_of(EvalCnnConfig, "out_dir")],
    batch_size: Annotated[int, option_of(EvalCnnConfig, "batch_size")] = default_of(EvalCnnConfig, "batch_size"),
    gradcam_samples: Annotated[
        int, option_of(EvalCnnConfig, "gradcam_samples")
    ] = default_of(EvalCnnConfig, "gradcam_samples"),
    max_fpr: Annotated[
        float | None,
        option_of(EvalCnnConfig, "max_fpr"),
    ] = None,
    input_scale: Annotated[
        InputScaleOption, option_of(EvalCnnConfig, "input_scale")
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
    model: Annotated[Path, option_of(EvalClipConfig, "model")],
    data: Annotated[Path, option_of(EvalClipConfig, "data_dir")],
    out: Annotated[Path, option_of(EvalClipConfig, "out_dir")],
    img_size: Annotated[int, option_of(EvalClipConfig, "img_size")] = default_of(EvalClipConfig, "img_size"),
    batch_size: Annotated[int, option_of(EvalClipConfig, "batch_size")] = default_of(EvalClipConfig, "batch_size"),
    split: Annotated[
        Split, option_of(EvalClipConfig, "split")
    ] = default_of(EvalClipConfig, "split"),
    val_fraction: Annotated[
        float, option_of(EvalClipConfig, "val_fraction")
    ] = default_of(EvalClipConfig, "val_fraction"),
    seed: Annotated[
        int, option_of(EvalClipConfig, "seed")
    ] = default_of(EvalClipConfig, "seed"),
    threshold: Annotated[float | None, option_of(EvalClipConfig, "threshold")] = None,
    threshold_from: Annotated[
        Path | None, typer.Option(help="Fixed threshold from a threshold.json (e.g. the val run's, to score test).")
    ] = None,
    max_fpr: Annotated[
        float | None,
        option_of(EvalClipConfig, "max_fpr"),
    ] = None,
    device: Annotated[
        str, option_of(EvalClipConfig, "device")
    ] = default_of(EvalClipConfig, "device"),
    workers: Annotated[
        int, option_of(EvalClipConfig, "workers")
    ] = default_of(EvalClipConfig, "workers"),
) -> None:
    """Evaluate model B: classification report, AUC, ROC / confusion / threshold plots."""

    def body() -> None:
        from dfstream.models.train_clip import evaluate_clip

        given = threshold is not None or threshold_from is not None
        fixed = decision_of(threshold, threshold_from).threshold_raw if given else None

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
    model: Annotated[Path, option_of(EvalKindsConfig, "model")],
    faces: Annotated[Path, option_of(EvalKindsConfig, "faces")],
    out: Annotated[Path, option_of(EvalKindsConfig, "out_dir")],
    img_size: Annotated[int, option_of(EvalKindsConfig, "img_size")] = default_of(EvalKindsConfig, "img_size"),
    genuine_clips: Annotated[
        int, option_of(EvalKindsConfig, "genuine_clips")
    ] = default_of(EvalKindsConfig, "genuine_clips"),
    clips_per_kind: Annotated[
        int, option_of(EvalKindsConfig, "clips_per_kind")
    ] = default_of(EvalKindsConfig, "clips_per_kind"),
    seed: Annotated[int, option_of(EvalKindsConfig, "seed")] = default_of(EvalKindsConfig, "seed"),
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
    data: Annotated[Path, option_of(EvalBundledConfig, "data_dir")],
    out: Annotated[Path, option_of(EvalBundledConfig, "out_dir")],
    models: Annotated[Path, option_of(EvalBundledConfig, "models")] = BUNDLED_MODELS,
    precision: Annotated[
        Precision, option_of(EvalBundledConfig, "precision")
    ] = default_of(EvalBundledConfig, "precision"),
    device: Annotated[Device, option_of(EvalBundledConfig, "device")] = default_of(EvalBundledConfig, "device"),
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


SplitChoice = StrEnum("SplitChoice", {s: s for s in SPLITS})  # type: ignore[misc]  # members from SPLITS
DEFAULT_CROSS_SPLIT = SplitChoice(default_of(EvalCrossConfig, "split"))


@eval_app.command("cross")
def eval_cross_cmd(
    models: Annotated[Path, option_of(EvalCrossConfig, "models")],
    data: Annotated[Path, option_of(EvalCrossConfig, "data_dir")],
    out: Annotated[Path, option_of(EvalCrossConfig, "out_dir")],
    split: Annotated[SplitChoice, option_of(EvalCrossConfig, "split")] = DEFAULT_CROSS_SPLIT,
    precision: Annotated[
        Precision, option_of(EvalCrossConfig, "precision")
    ] = default_of(EvalCrossConfig, "precision"),
    device: Annotated[Device, option_of(EvalCrossConfig, "device")] = default_of(EvalCrossConfig, "device"),
) -> None:
    """Exported graphs on another data set's import: frame- (clip-) and video-level AUC per method, with the
    interval from resampling people; train on one data set, test on another."""

    def body() -> None:
        from dfstream.models.eval_cross import evaluate_cross, table

        cfg = EvalCrossConfig(models=models, data_dir=data, out_dir=out, split=split.value,
                              precision=precision.value, device=device.value)
        for line in table(evaluate_cross(cfg)):
            typer.echo(line)
        typer.echo(f"written: {out}/cross.json, {out}/cross.md, per-sample scores in {out}")

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
