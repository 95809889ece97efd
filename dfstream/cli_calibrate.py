"""``dfstream calibrate``: shipped graphs calibrated again on a data build's validation people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import argument_of, default_of, guard, option_of
from dfstream.config import RecalibrateConfig


def calibrate_cmd(
    models: Annotated[Path, argument_of(RecalibrateConfig, "models")],
    data: Annotated[Path, option_of(RecalibrateConfig, "data_dir")],
    max_fpr: Annotated[
        float, option_of(RecalibrateConfig, "max_fpr")
    ] = default_of(RecalibrateConfig, "max_fpr"),
    only: Annotated[
        list[str] | None, typer.Option(help="Refit only this graph (frame_cnn or clip_head); repeat for both.")
    ] = None,
    out: Annotated[Path | None, option_of(RecalibrateConfig, "out_dir")] = None,
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
