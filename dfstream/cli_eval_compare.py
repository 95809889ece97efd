"""``dfstream eval compare``: whether one evaluation's AUC beats another's on the same samples by more
than the people scored allow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dfstream.cli_common import default_of, guard
from dfstream.config import EvalCompareConfig


def eval_compare_cmd(
    base: Annotated[
        Path, typer.Argument(help="An evaluation's output folder (or its per_sample.csv): the model to beat.")
    ],
    other: Annotated[Path, typer.Argument(help="Another evaluation of the same samples: the candidate.")],
    rounds: Annotated[int, typer.Option(help="Resamples of the people.")] = default_of(EvalCompareConfig, "rounds"),
    seed: Annotated[int, typer.Option(help="Seed of the resampling.")] = default_of(EvalCompareConfig, "seed"),
) -> None:
    """AUC difference (other − base) per kind, with its 95 % interval when whole people are resampled."""

    def body() -> None:
        from dfstream.models.compare import compare, markdown

        cfg = EvalCompareConfig(base=base, other=other, rounds=rounds, seed=seed)
        typer.echo(markdown(compare(cfg)))

    guard(body)
