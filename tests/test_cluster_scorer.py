"""The shared scorer's batching, without Ray: requests that arrive together run as one batch, and
each gets exactly what the models give its own crops."""

from __future__ import annotations

import asyncio

import numpy as np

from dfstream.stream.cluster.scorer import BatchingScorer
from dfstream.stream.cluster.worker import scorer_order
from dfstream.stream.contract.paths import BUNDLED_MODELS


def _crops(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_requests_that_arrive_during_a_batch_go_together_and_get_their_own_answers() -> None:
    scorer = BatchingScorer(str(BUNDLED_MODELS), device="cpu", precision="fp32", max_crops=64)
    a, b = scorer.models.frame_input.size, scorer.models.clip_input.size
    rng = np.random.default_rng(0)
    requests = [(_crops(rng, n, a), _crops(rng, n + 1, b)) for n in (1, 2, 0, 1)]

    async def all_at_once() -> list:
        return await asyncio.gather(*(scorer.score(f, c, explain=False) for f, c in requests))

    results = asyncio.run(all_at_once())
    # the first finds the scorer idle and runs at once; the other three queue behind it: one batch
    assert scorer.stats() == {"batches": 2, "requests": 4, "crops": 4 + 8}
    for (frames, clips), got in zip(requests, results, strict=True):
        alone = scorer.models.score_crops(list(frames), list(clips))
        assert got.p_frame.shape == (len(frames),) and got.embeddings.shape == (len(clips), 1280)
        np.testing.assert_allclose(got.p_frame, alone.p_frame, atol=1e-5)
        np.testing.assert_allclose(got.embeddings, alone.embeddings, atol=1e-4)
        assert got.attention is None


def test_a_batch_holds_at_most_max_crops() -> None:
    scorer = BatchingScorer(str(BUNDLED_MODELS), device="cpu", precision="fp32", max_crops=4)
    size = scorer.models.clip_input.size
    rng = np.random.default_rng(1)
    empty = np.zeros((0, scorer.models.frame_input.size, scorer.models.frame_input.size, 3), np.uint8)

    async def four() -> list:
        return await asyncio.wait_for(asyncio.gather(*(scorer.score(empty, _crops(rng, 2, size))
                                                       for _ in range(4))), timeout=60)

    results = asyncio.run(four())
    assert [r.embeddings.shape[0] for r in results] == [2, 2, 2, 2]
    assert scorer.stats()["batches"] == 3  # [1st] alone, then [2nd, 3rd] (4 crops), then [4th]


def test_scorer_order_prefers_this_node_and_spreads_cameras() -> None:
    scorers = [("s0", "nodeA"), ("s1", "nodeB"), ("s2", "nodeB")]
    assert scorer_order(scorers, "nodeA", "cam1")[0] == "s0"
    firsts = {scorer_order(scorers, "nodeB", name)[0] for name in ("a", "b", "c", "d")}
    assert firsts == {"s1", "s2"}
    assert sorted(scorer_order(scorers, "nodeC", "cam")) == ["s0", "s1", "s2"]  # no local one: all, spread
