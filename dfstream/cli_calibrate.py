"""``dfstream calibrate``: shipped graphs calibrated again on a data build's validation people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import default_of, guard
from dfstream.config import RecalibrateConfig


def calibrate_cmd(
    models: Annotated[Path, typer.Argument(help="Folder with the graphs (e.g. models/weights).")],
    data: Annotated[Path, typer.Option(help="A data build whose validation split is scored (frames/val, clips/val).")],
    max_fpr: Annotated[
        float, typer.Option(help="Cap on the genuine validation samples the threshold flags.")
    ] = default_of(RecalibrateConfig, "max_fpr"),
    only: Annotated[
        list[str] | None, typer.Option(help="Refit only this graph (frame_cnn or clip_head); repeat for both.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the refitted files here instead of in place.")] = None,
) -> None:
    """Refit each model's calibration and threshold on validation, on top of its own; graphs unchanged."""

    def body() -> None:
        from dfstream.models.recalibrate import recalibrate

        given = {"roles": tuple(only)} if only else {}  # default: every calibrated graph (RecalibrateConfig)
        cfg = RecalibrateConfig.model_validate(
            {"models": models, "data_dir": data, "max_fpr": max_fpr, "out_dir": out} | given
        )
        for r in recalibrate(cfg):
            typer.echo(r.line())

    guard(body)
