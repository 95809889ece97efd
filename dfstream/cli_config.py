"""``dfstream config check|example``: the cameras file without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import guard

config_app = typer.Typer(help="Check or print a cameras file for 'run --config' and 'serve --config'.",
                         no_args_is_help=True)


@config_app.command("check")
def check_cmd(file: Annotated[Path, typer.Argument(help="The YAML file to validate.")]) -> None:
    """Validate a cameras file: one line per source and output (passwords masked), or the first error."""

    def body() -> None:
        from dfstream.config_file import describe, interpolated_fields, load_config

        for line in describe(load_config(file), interpolated_fields(file)):
            typer.echo(line)
        typer.echo(f"{file}: ok")

    guard(body)


@config_app.command("example")
def example_cmd() -> None:
    """Print a commented example cameras file."""
    from dfstream.config_file import EXAMPLE

    typer.echo(EXAMPLE, nl=False)
