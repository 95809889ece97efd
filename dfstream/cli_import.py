"""``dfstream import``: published detectors' checkpoints and other ONNX face classifiers as face models.

dfstream bundles and downloads none of them; the user passes the file they downloaded, and runs the
result with ``dfstream run --models DIR`` beside the bundled models.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dfstream.cli_common import guard

if TYPE_CHECKING:
    from dfstream.export.onnx_files import ExportedFile

import_app = typer.Typer(help="Import a published deepfake detector (SBI, DeepfakeBench) or any ONNX face classifier "
                         "as a model 'dfstream run --models DIR' scores beside the bundled ones.",
                         no_args_is_help=True)

OUT_HELP = "Folder for the imported model (NAME.onnx)."
NAME_HELP = "Name of its score in records and fusion weights. Default: the detector's."


class DfbDetector(StrEnum):
    xception = "xception"
    efficientnetb4 = "efficientnetb4"
    sbi = "sbi"
    """DeepfakeBench's own SBI training (its EfficientNet-B4 backbone), not SBI's released file."""


FP16_HELP = "Also write NAME.fp16.onnx for CUDA (checked against torch at 2e-2)."


def _report(written: list[ExportedFile], checked: bool = True) -> None:
    for f in written:
        check = f" (P(fake) within {f.max_abs_diff:.1e} of torch)" if checked else ""
        typer.echo(f"wrote {f.path}{check}")
    typer.echo(f"run it with: dfstream run --models {written[0].path.parent}")


def _import(kind: str, checkpoint: Path, out_dir: Path, name: str | None, fp16: bool) -> None:
    """One published checkpoint through ``export/published.py`` (torch is imported only here)."""

    def body() -> None:
        from dfstream.export.published import import_detector

        _report(import_detector(kind, checkpoint, out_dir, name, fp16=fp16))

    guard(body)


@import_app.command("sbi")
def import_sbi(
    checkpoint: Annotated[Path, typer.Argument(help="SBI's released or self-trained checkpoint (.tar/.pth).")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help=OUT_HELP)] = Path("out/sbi"),
    name: Annotated[str | None, typer.Option(help=NAME_HELP)] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help=FP16_HELP)] = False,
) -> None:
    """Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): EfficientNet-B4 at 380 px, its own crop."""

    _import("sbi", checkpoint, out_dir, name, fp16)


@import_app.command("deepfakebench")
def import_deepfakebench(
    checkpoint: Annotated[Path, typer.Argument(help="A DeepfakeBench checkpoint (e.g. xception_best.pth).")],
    detector: Annotated[DfbDetector, typer.Option(help="Which DeepfakeBench detector the file holds.")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help=OUT_HELP)] = Path("out/deepfakebench"),
    name: Annotated[str | None, typer.Option(help=NAME_HELP)] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help=FP16_HELP)] = False,
) -> None:
    """DeepfakeBench (NeurIPS 2023) zoo checkpoints: 256 px, mean = std = 0.5, five-point aligned crops."""

    _import("sbi_dfb" if detector is DfbDetector.sbi else detector.value, checkpoint, out_dir, name, fp16)


@import_app.command("onnx")
def import_onnx_cmd(
    model: Annotated[Path, typer.Argument(help="An ONNX face classifier with one image input.")],
    spec: Annotated[Path, typer.Option(help="YAML spec: input size, layout, colour, scale, mean/std, crop, output "
                                       "(see the README, 'Use a published detector').")],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o", help=OUT_HELP)] = Path("out/imported"),
) -> None:
    """Any ONNX face classifier, described by a spec; its output is folded into P(fake)."""

    def body() -> None:
        from dfstream.export.onnx_spec import import_onnx

        _report([import_onnx(model, spec, out_dir)], checked=False)

    guard(body)
