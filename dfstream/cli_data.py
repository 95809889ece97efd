"""``dfstream data``: the offline training set made from real faces in registry packages, and the sample clip."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, get_args

import typer

from dfstream.cli_common import argument_of, default_of, guard, option_of
from dfstream.models.configs import BuildConfig, ImportConfig
from dfstream.models.data.footage_layouts import FootageKind
from dfstream.stream.contract.paths import SAMPLE_CLIP

data_app = typer.Typer(help="Training data: built from real faces that registry packages carry, or imported from "
                       "a data set's videos.", no_args_is_help=True)


FootageKindChoice = StrEnum("FootageKindChoice", {k: k for k in get_args(FootageKind)})  # type: ignore[misc]
"""The layouts ``data import`` reads, named once in ``footage_layouts.FootageKind``."""


# an option's choices read from its Literal in ImportConfig, declared there once
Compression = StrEnum("Compression", {c: c for c in get_args(ImportConfig.model_fields["compression"].annotation)})  # type: ignore[misc]
GroupBy = StrEnum("GroupBy", {c: c for c in get_args(ImportConfig.model_fields["group_by"].annotation)})  # type: ignore[misc]
DEFAULT_COMPRESSION = Compression(default_of(ImportConfig, "compression"))
DEFAULT_GROUP_BY = GroupBy(default_of(ImportConfig, "group_by"))


@data_app.command("build")
def build_cmd(
    out: Annotated[
        Path, option_of(BuildConfig, "out")
    ] = default_of(BuildConfig, "out"),
    cache: Annotated[Path, option_of(BuildConfig, "cache")] = default_of(
        BuildConfig, "cache"
    ),
    seed: Annotated[int, option_of(BuildConfig, "seed")] = default_of(
        BuildConfig, "seed"
    ),
    genuine: Annotated[int, option_of(BuildConfig, "genuine_per_face")] = default_of(BuildConfig, "genuine_per_face"),
    sbi: Annotated[int, option_of(BuildConfig, "sbi_per_face")] = default_of(BuildConfig, "sbi_per_face"),
    swap: Annotated[
        int, option_of(BuildConfig, "swap_per_face")
    ] = default_of(BuildConfig, "swap_per_face"),
    frame_every: Annotated[
        int, option_of(BuildConfig, "frame_every")
    ] = default_of(BuildConfig, "frame_every"),
    softer_pastes_only: Annotated[
        bool, option_of(BuildConfig, "softer_pastes_only", "--softer-pastes-only")
    ] = default_of(BuildConfig, "softer_pastes_only"),
    webrtc_share: Annotated[float, option_of(BuildConfig, "webrtc_share")] = default_of(BuildConfig, "webrtc_share"),
) -> None:
    """Fetch face photos (no dependencies installed), make genuine, self-blended and face-swap
    clips split by identity, and write them in both notebooks' layouts."""

    def body() -> None:
        from dfstream.models.data.build import build, summary_lines

        cfg = BuildConfig(
            out=out,
            cache=cache,
            seed=seed,
            genuine_per_face=genuine,
            sbi_per_face=sbi,
            swap_per_face=swap,
            frame_every=frame_every,
            softer_pastes_only=softer_pastes_only,
            webrtc_share=webrtc_share,
        )
        for line in summary_lines(build(cfg)):
            typer.echo(line)
        typer.echo(f"written: {out}/frames (model A), {out}/clips/{{train,val,test}} (model B), {out}/summary.json")

    guard(body)


@data_app.command("sample-clip")
def sample_clip_cmd(
    out: Annotated[Path, typer.Option(help="Where the clip goes.")] = SAMPLE_CLIP,
    photo: Annotated[
        Path | None, typer.Option(help="Portrait to animate (default: matplotlib's public-domain Grace Hopper).")
    ] = None,
) -> None:
    """Make the sample clip 'dfstream run' plays: a portrait with camera motion, self-blended from 3.0 to 5.5 s."""

    def body() -> None:
        from dfstream.models.data.sample_clip import grace_hopper, make_sample_clip

        counts = make_sample_clip(photo or grace_hopper(), out)
        typer.echo(f"wrote {out} ({out.stat().st_size // 1024} KiB): {counts}")

    guard(body)


@data_app.command("import")
def import_cmd(
    kind: Annotated[FootageKindChoice, argument_of(ImportConfig, "kind")],
    root: Annotated[Path, argument_of(ImportConfig, "root")],
    out: Annotated[Path, option_of(ImportConfig, "out", "--out", "-o")],
    frames_per_video: Annotated[int, option_of(ImportConfig, "frames_per_video")] = default_of(
        ImportConfig, "frames_per_video"),
    clips_per_video: Annotated[int, option_of(ImportConfig, "clips_per_video")] = default_of(
        ImportConfig, "clips_per_video"),
    max_faces: Annotated[int, option_of(ImportConfig, "max_faces")] = default_of(ImportConfig, "max_faces"),
    min_face: Annotated[int, option_of(ImportConfig, "min_face")] = default_of(ImportConfig, "min_face"),
    workers: Annotated[int, option_of(ImportConfig, "workers")] = default_of(ImportConfig, "workers"),
    seed: Annotated[int, option_of(ImportConfig, "seed")] = default_of(ImportConfig, "seed"),
    compression: Annotated[Compression, option_of(ImportConfig, "compression")] = DEFAULT_COMPRESSION,
    methods: Annotated[list[str] | None, option_of(ImportConfig, "methods", "--method")] = None,
    splits: Annotated[Path | None, option_of(ImportConfig, "splits")] = None,
    class_map: Annotated[list[str] | None, option_of(ImportConfig, "class_map")] = None,
    group_by: Annotated[GroupBy, option_of(ImportConfig, "group_by")] = DEFAULT_GROUP_BY,
    limit: Annotated[int | None, option_of(ImportConfig, "limit")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """FaceForensics++, Celeb-DF, DFDC or your own videos → model A's frames and model B's clips, cropped and
    landmarked by the stream's own code, split so no person (or video pair) is on two sides. Run it again to go
    on after an interruption."""

    def body() -> None:
        from dfstream.models.data.footage_import import run_import, summary_lines

        cfg = ImportConfig(kind=kind.value, root=root, out=out, frames_per_video=frames_per_video,
                           clips_per_video=clips_per_video, max_faces=max_faces, min_face=min_face, workers=workers,
                           seed=seed, compression=compression.value, methods=tuple(methods or ()), splits=splits,
                           class_map=tuple(class_map or ()), group_by=group_by.value, limit=limit)
        try:
            summary = run_import(cfg, progress=progress)
        except KeyboardInterrupt:
            typer.echo(f"dfstream: interrupted; what finished is kept in {out}: run the same command to go on",
                       err=True)
            raise typer.Exit(130) from None
        for line in summary_lines(summary):
            typer.echo(line)
        typer.echo(f"written: {out}/frames (model A), {out}/clips/{{train,val,test}} (model B), "
                   f"{out}/import-summary.json")

    guard(body)
