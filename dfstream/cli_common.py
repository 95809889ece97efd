"""What every command module shares: the one-line error guard, the debug switch, device names, option
defaults and help texts read from the config models, and the threshold an export or evaluation uses."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

from dfstream.stream.contract.exceptions import DfstreamError, InputPathError

if TYPE_CHECKING:
    from dfstream.models.calibration import Decision

T = TypeVar("T")
log = logging.getLogger("dfstream")

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


class InputScaleOption(StrEnum):
    auto = "auto"
    zero_one = "0-1"
    zero_255 = "0-255"


def decision_of(threshold: float | None, threshold_from: Path | None) -> Decision:
    """The threshold and calibration an export or evaluation uses: given, read from a threshold.json, or 0.5."""
    from dfstream.models.calibration import Decision, read_decision

    if threshold is not None and threshold_from is not None:
        raise InputPathError("give --threshold or --threshold-from, not both")
    if threshold_from is not None:
        decision = read_decision(threshold_from)
        log.info("threshold %.4f (raw %.4f), calibration (%.3f, %.3f) from %s", decision.threshold,
                 decision.threshold_raw, *decision.calibration, threshold_from)
        return decision
    if threshold is None:
        log.warning(
            "no --threshold given: writing 0.5; run 'dfstream eval' and pass --threshold-from its threshold.json"
        )
        return Decision(0.5, 0.5)
    return Decision(threshold, threshold)


def default_of(config: type[BaseModel], field: str) -> Any:
    """An option's default, read from its config model: declared there once, shown by ``--help``."""
    default = config.model_fields[field].default
    if default is PydanticUndefined:
        raise KeyError(f"{config.__name__}.{field} has no default")
    return default


def _description_of(config: type[BaseModel], field: str) -> str:
    description = config.model_fields[field].description
    if not description:
        raise KeyError(f"{config.__name__}.{field} has no description")
    return description


def option_of(config: type[BaseModel], field: str, *param_decls: str, **settings: Any) -> Any:
    """An option whose ``--help`` is its config field's description: each option's text is written once."""
    return typer.Option(*param_decls, help=_description_of(config, field), **settings)


def argument_of(config: type[BaseModel], field: str) -> Any:
    """An argument whose ``--help`` is its config field's description."""
    return typer.Argument(help=_description_of(config, field))


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
