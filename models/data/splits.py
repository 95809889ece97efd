"""Whole groups (people, video pairs) to train/val/test, so that no group sits on two sides."""

from __future__ import annotations

from typing import Literal

import numpy as np

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")


def assign_splits(
    group_sizes: dict[str, int],
    seed: int,
    fractions: tuple[float, float, float],
    test_only: frozenset[str] = frozenset(),
) -> dict[str, Split]:
    """Whole groups to splits, largest first, each to the split furthest below its share;
    ``test_only`` groups go to test before anything else is placed."""
    rng = np.random.default_rng(seed)
    names = sorted(g for g in group_sizes if g not in test_only)
    order = [names[i] for i in rng.permutation(len(names))]
    order.sort(key=lambda g: -group_sizes[g])  # stable: ties keep the seeded order
    total = sum(group_sizes.values())
    filled = dict.fromkeys(SPLITS, 0)
    out: dict[str, Split] = {}
    for g in sorted(test_only & group_sizes.keys()):
        out[g] = "test"
        filled["test"] += group_sizes[g]
    open_splits = [s for i, s in enumerate(SPLITS) if fractions[i] > 0]
    for g in order:
        deficit = {s: fractions[i] * total - filled[s] for i, s in enumerate(SPLITS)}
        # a split that has nothing yet goes first, so val and test are never empty; a 0 share gets nothing
        pick = max(open_splits, key=lambda s: (filled[s] == 0, deficit[s]))
        out[g] = pick
        filled[pick] += group_sizes[g]
    return out
