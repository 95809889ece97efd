"""``dfstream eval compare``: whether one evaluation's AUC beats another's on the same samples by more
than the people scored allow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import argument_of, default_of, guard, option_of
from dfstream.models.configs import EvalCompareConfig


def eval_compare_cmd(
    base: Annotated[Path, argument_of(EvalCompareConfig, "base")],
    other: Annotated[Path, argument_of(EvalCompareConfig, "other")],
    rounds: Annotated[int, option_of(EvalCompareConfig, "rounds")] = default_of(EvalCompareConfig, "rounds"),
    seed: Annotated[int, option_of(EvalCompareConfig, "seed")] = default_of(EvalCompareConfig, "seed"),
) -> None:
    """AUC difference (other − base) per kind, with its 95 % interval when whole people are resampled."""

    def body() -> None:
        from dfstream.models.compare import compare, markdown

        cfg = EvalCompareConfig(base=base, other=other, rounds=rounds, seed=seed)
        typer.echo(markdown(compare(cfg)))

    guard(body)
