"""What every command module shares: the one-line error guard, the debug switch, device names."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from dfstream.exceptions import DfstreamError

T = TypeVar("T")

state = {"debug": False}


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


OrtDevice = Annotated[Device, typer.Option(help="ONNX Runtime device.")]
ModelsDir = Annotated[Path, typer.Option(help="Folder with the three ONNX graphs.")]


class Precision(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"


def default_of(config: type[BaseModel], field: str) -> Any:
    """An option's default, read from its config model: declared there once, shown by ``--help``."""
    default = config.model_fields[field].default
    if default is PydanticUndefined:
        raise KeyError(f"{config.__name__}.{field} has no default")
    return default


def guard(fn: Callable[[], T]) -> T:
    """Run a command body: user errors become one line on stderr and exit code 2."""
    try:
        return fn()
    except DfstreamError as exc:
        if state["debug"]:
            raise
        typer.echo(f"dfstream: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        where = f"option '{field}': " if field else ""  # a rule across options has no one option
        typer.echo(f"dfstream: error: {where}{first['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(2) from None


FRAME_LANE_HELP = ("Live and paced sources: model A runs on its own thread beside the frames, so its time never "
                   "delays one and its score lags a few frames (the default: benchmarks/RESULTS.md). "
                   "--no-frame-lane runs it inside each frame.")
