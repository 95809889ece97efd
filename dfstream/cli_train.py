"""``dfstream train``: model A (frame CNN) and model B (clip model), on notebook folders or fakes made on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import default_of, guard
from dfstream.config import TrainClipConfig, TrainCnnConfig

train_app = typer.Typer(help="Train model A (frame CNN) or model B (clip model).", no_args_is_help=True)


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
