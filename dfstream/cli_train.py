"""``dfstream train``: model A (frame CNN) and model B (clip model), on notebook folders or fakes made on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import default_of, guard, option_of
from dfstream.config import TrainClipConfig, TrainCnnConfig

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
        option_of(TrainClipConfig, "faces"),
    ] = None,
    activation: Annotated[
        str, option_of(TrainClipConfig, "activation")
    ] = default_of(TrainClipConfig, "activation"),
    steps: Annotated[
        int, option_of(TrainClipConfig, "steps")
    ] = default_of(TrainClipConfig, "steps"),
    frame_batch: Annotated[
        int, option_of(TrainClipConfig, "frame_batch")
    ] = default_of(TrainClipConfig, "frame_batch"),
    eval_every: Annotated[
        int, option_of(TrainClipConfig, "eval_every")
    ] = default_of(TrainClipConfig, "eval_every"),
    head_clips: Annotated[
        int, option_of(TrainClipConfig, "head_clips")
    ] = default_of(TrainClipConfig, "head_clips"),
    exclude: Annotated[
        str | None, option_of(TrainClipConfig, "exclude")
    ] = None,
    fixed_share: Annotated[
        float, option_of(TrainClipConfig, "fixed_share")
    ] = default_of(TrainClipConfig, "fixed_share"),
    freeze_blocks: Annotated[
        int, option_of(TrainClipConfig, "freeze_blocks")
    ] = default_of(TrainClipConfig, "freeze_blocks"),
    weight_average: Annotated[
        float, option_of(TrainClipConfig, "weight_average")
    ] = default_of(TrainClipConfig, "weight_average"),
    paired: Annotated[
        bool, option_of(TrainClipConfig, "paired")
    ] = default_of(TrainClipConfig, "paired"),
    boundary_weight: Annotated[
        float, option_of(TrainClipConfig, "boundary_weight")
    ] = default_of(TrainClipConfig, "boundary_weight"),
    sharpness_both_ways: Annotated[
        bool,
        option_of(TrainClipConfig, "sharpness_both_ways", "--sharpness-both-ways"),
    ] = default_of(TrainClipConfig, "sharpness_both_ways"),
    denoise_share: Annotated[
        float, option_of(TrainClipConfig, "denoise_share")
    ] = default_of(TrainClipConfig, "denoise_share"),
    colour_share: Annotated[
        float, option_of(TrainClipConfig, "colour_share")
    ] = default_of(TrainClipConfig, "colour_share"),
    encoder_soup: Annotated[
        list[Path] | None,
        option_of(TrainClipConfig, "encoder_soup"),
    ] = None,
    device: Annotated[
        str, option_of(TrainClipConfig, "device")
    ] = default_of(TrainClipConfig, "device"),
    amp: Annotated[bool, option_of(TrainClipConfig, "amp", "--amp/--no-amp")] = default_of(TrainClipConfig, "amp"),
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
            amp=amp,
        )
        typer.echo(f"best model: {train_clip(cfg)}")

    guard(body)
