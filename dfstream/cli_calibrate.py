"""``dfstream calibrate``: shipped graphs calibrated again on a data build's validation people, or imported
detectors on the user's own real/ and fake/ videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import argument_of, default_of, guard, option_of
from dfstream.models.configs import RecalibrateConfig


def calibrate_cmd(
    models: Annotated[Path, argument_of(RecalibrateConfig, "models")],
    data: Annotated[Path | None, option_of(RecalibrateConfig, "data_dir")] = None,
    videos: Annotated[Path | None, option_of(RecalibrateConfig, "videos")] = None,
    frames_per_video: Annotated[
        int, option_of(RecalibrateConfig, "frames_per_video")
    ] = default_of(RecalibrateConfig, "frames_per_video"),
    max_fpr: Annotated[
        float, option_of(RecalibrateConfig, "max_fpr")
    ] = default_of(RecalibrateConfig, "max_fpr"),
    only: Annotated[
        list[str] | None, typer.Option(help="Refit only this graph (frame_cnn or clip_head); repeat for both.")
    ] = None,
    out: Annotated[Path | None, option_of(RecalibrateConfig, "out_dir")] = None,
    through: Annotated[list[str] | None, option_of(RecalibrateConfig, "through")] = None,
) -> None:
    """Refit each model's calibration and threshold on validation (a data build, or real/ and fake/ videos for
    imported detectors), on top of its own; graphs unchanged."""

    def body() -> None:
        from dfstream.export.recalibrate import recalibrate

        given = {"roles": tuple(only)} if only else {}  # default: every calibrated graph (RecalibrateConfig)
        cfg = RecalibrateConfig.model_validate(
            {"models": models, "data_dir": data, "videos": videos, "frames_per_video": frames_per_video,
             "max_fpr": max_fpr, "out_dir": out, "through": tuple(through or ())} | given
        )
        if cfg.videos is not None:
            from dfstream.export.recalibrate_videos import recalibrate_detectors

            results = recalibrate_detectors(cfg)
        else:
            results = recalibrate(cfg)
        for r in results:
            typer.echo(r.line())

    guard(body)
