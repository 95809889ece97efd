"""``dfstream train``: model A (frame CNN) and model B (clip model), on notebook folders or fakes made on the fly."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from dfstream.cli_common import default_of, guard, option_of
from dfstream.models.configs import TrainClipConfig, TrainCnnConfig, TrainOnTheFlyConfig
from dfstream.stream.contract.exceptions import OptionError

train_app = typer.Typer(help="Train model A (frame CNN) or model B (clip model).", no_args_is_help=True)


@train_app.command("cnn")
def train_cnn_cmd(
    data: Annotated[Path, option_of(TrainCnnConfig, "data_dir")],
    out: Annotated[Path, option_of(TrainCnnConfig, "out_dir")],
    img_size: Annotated[int, option_of(TrainCnnConfig, "img_size")] = default_of(TrainCnnConfig, "img_size"),
    batch_size: Annotated[int, option_of(TrainCnnConfig, "batch_size")] = default_of(TrainCnnConfig, "batch_size"),
    epochs: Annotated[
        int, option_of(TrainCnnConfig, "epochs")
    ] = default_of(TrainCnnConfig, "epochs"),
    lr: Annotated[
        float, option_of(TrainCnnConfig, "lr")
    ] = default_of(TrainCnnConfig, "lr"),
    seed: Annotated[int, option_of(TrainCnnConfig, "seed")] = default_of(TrainCnnConfig, "seed"),
    teacher: Annotated[
        Path | None, option_of(TrainCnnConfig, "teacher")
    ] = None,
    faces: Annotated[
        list[Path] | None,
        option_of(TrainCnnConfig, "faces"),
    ] = None,
    pool: Annotated[
        int, option_of(TrainCnnConfig, "pool")
    ] = default_of(TrainCnnConfig, "pool"),
    hard_weight: Annotated[
        float, option_of(TrainCnnConfig, "hard_weight")
    ] = default_of(TrainCnnConfig, "hard_weight"),
    fixed_share: Annotated[
        float, option_of(TrainCnnConfig, "fixed_share")
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
    data: Annotated[Path, option_of(TrainClipConfig, "data_dir")],
    out: Annotated[Path, option_of(TrainClipConfig, "out_dir")],
    img_size: Annotated[
        int, option_of(TrainClipConfig, "img_size")
    ] = default_of(TrainClipConfig, "img_size"),
    batch_size: Annotated[int, option_of(TrainClipConfig, "batch_size")] = default_of(TrainClipConfig, "batch_size"),
    epochs: Annotated[int, option_of(TrainClipConfig, "epochs")] = default_of(TrainClipConfig, "epochs"),
    lr: Annotated[float, option_of(TrainClipConfig, "lr")] = default_of(TrainClipConfig, "lr"),
    val_fraction: Annotated[
        float, option_of(TrainClipConfig, "val_fraction")
    ] = default_of(TrainClipConfig, "val_fraction"),
    val_data: Annotated[
        Path | None,
        option_of(TrainClipConfig, "val_dir"),
    ] = None,
    seed: Annotated[
        int, option_of(TrainClipConfig, "seed")
    ] = default_of(TrainClipConfig, "seed"),
    imagenet_weights: Annotated[
        Path | None, option_of(TrainClipConfig, "imagenet_weights")
    ] = None,
    workers: Annotated[int | None, option_of(TrainClipConfig, "workers")] = default_of(TrainClipConfig, "workers"),
    pretrain_epochs: Annotated[
        int, option_of(TrainClipConfig, "pretrain_epochs")
    ] = default_of(TrainClipConfig, "pretrain_epochs"),
    pretrain_frames: Annotated[
        int, option_of(TrainClipConfig, "pretrain_frames")
    ] = default_of(TrainClipConfig, "pretrain_frames"),
    faces: Annotated[
        list[Path] | None,
        option_of(TrainOnTheFlyConfig, "faces"),
    ] = None,
    activation: Annotated[
        str, option_of(TrainClipConfig, "activation")
    ] = default_of(TrainClipConfig, "activation"),
    steps: Annotated[
        int, option_of(TrainOnTheFlyConfig, "steps")
    ] = default_of(TrainOnTheFlyConfig, "steps"),
    frame_batch: Annotated[
        int, option_of(TrainOnTheFlyConfig, "frame_batch")
    ] = default_of(TrainOnTheFlyConfig, "frame_batch"),
    eval_every: Annotated[
        int, option_of(TrainOnTheFlyConfig, "eval_every")
    ] = default_of(TrainOnTheFlyConfig, "eval_every"),
    head_clips: Annotated[
        int, option_of(TrainOnTheFlyConfig, "head_clips")
    ] = default_of(TrainOnTheFlyConfig, "head_clips"),
    exclude: Annotated[
        str | None, option_of(TrainOnTheFlyConfig, "exclude")
    ] = None,
    fixed_share: Annotated[
        float, option_of(TrainOnTheFlyConfig, "fixed_share")
    ] = default_of(TrainOnTheFlyConfig, "fixed_share"),
    device: Annotated[
        str, option_of(TrainClipConfig, "device")
    ] = default_of(TrainClipConfig, "device"),
    amp: Annotated[bool, option_of(TrainClipConfig, "amp", "--amp/--no-amp")] = default_of(TrainClipConfig, "amp"),
) -> None:
    """Train model B (EfficientNet-B0 + BiLSTM) on notebook B's folder layout, or on fakes made on the fly."""

    def body() -> None:
        shared = {"data_dir": data, "out_dir": out, "img_size": img_size, "epochs": epochs, "lr": lr,
                  "val_dir": val_data, "seed": seed, "imagenet_weights": imagenet_weights, "workers": workers,
                  "activation": activation, "device": device, "amp": amp}
        fixed = {"batch_size": batch_size, "val_fraction": val_fraction, "pretrain_epochs": pretrain_epochs,
                 "pretrain_frames": pretrain_frames}
        on_the_fly = {"steps": steps, "frame_batch": frame_batch, "eval_every": eval_every, "head_clips": head_clips,
                      "exclude": exclude, "fixed_share": fixed_share}
        if faces:
            _refuse_options_of(TrainClipConfig, fixed, "training on fixed clips, not with --faces")
            from dfstream.models.train_onthefly import train_clip_onthefly

            cfg = TrainOnTheFlyConfig.model_validate({**shared, **on_the_fly, "faces": tuple(faces)})
            path = train_clip_onthefly(cfg)
        else:
            _refuse_options_of(TrainOnTheFlyConfig, on_the_fly, "on-the-fly training: give --faces")
            from dfstream.models.train_clip import train_clip

            path = train_clip(TrainClipConfig.model_validate({**shared, **fixed}))
        typer.echo(f"best model: {path}")

    guard(body)


def _refuse_options_of(recipe: type[BaseModel], given: Mapping[str, object], what: str) -> None:
    """One line naming the options of the other recipe that were set away from their defaults."""
    stray = [f"--{name.replace('_', '-')}" for name, value in given.items()
             if value != recipe.model_fields[name].default]
    if stray:
        raise OptionError(f"{', '.join(stray)}: {'options' if len(stray) > 1 else 'an option'} of {what}")
