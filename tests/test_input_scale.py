"""How ``auto`` tells model A's input scale from its answers (pure numpy; the export tests use real models)."""

from __future__ import annotations

import numpy as np
import pytest

from dfstream.models.input_scale import pick_scale, probe_of
from dfstream.stream.contract.exceptions import ExportCheckError

RNG = np.random.default_rng(0)
VARIED = 1 / (1 + np.exp(-RNG.normal(0.5, 0.8, 32)))  # answers of a model fed its own scale
NEAR_CONSTANT = 0.508 + RNG.normal(0, 1e-6, 32)  # near-black inputs: one answer for every face
SATURATED = np.where(RNG.random(32) < 0.5, 1.0, 1e-9)  # 255x too bright: every answer pinned at 0 or 1


def test_saturated_answers_are_not_informative_even_when_spread() -> None:
    probe = probe_of("0-255", SATURATED)
    assert probe.saturated_share == 1.0 and not probe.informative
    assert probe_of("0-1", VARIED).informative and not probe_of("0-1", NEAR_CONSTANT).informative


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"0-255": VARIED, "0-1": NEAR_CONSTANT}, "0-255"),
        ({"0-255": SATURATED, "0-1": VARIED}, "0-1"),
    ],
)
def test_the_varied_scale_wins(answers: dict[str, np.ndarray], expected: str) -> None:
    scale, probes = pick_scale(answers)
    assert scale == expected and {p.scale for p in probes} == {"0-255", "0-1"}


def test_degenerate_and_ambiguous_answers_name_the_option() -> None:
    with pytest.raises(ExportCheckError, match=r"degenerate at both input scales.*--input-scale 0-1"):
        pick_scale({"0-255": SATURATED, "0-1": NEAR_CONSTANT})
    with pytest.raises(ExportCheckError, match=r"cannot tell model A's input scale.*--input-scale"):
        pick_scale({"0-255": VARIED, "0-1": VARIED[::-1] * 0.99})
