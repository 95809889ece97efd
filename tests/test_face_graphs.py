"""The face stage's graph sized to the faces in view (live sources), on real MediaPipe and real faces.

A graph for four faces with one in view runs its detector on every frame; the stage swaps in a
graph for one and looks for new faces every ``detect_every`` frames. These tests hold that no face
is lost on the way, that a new face is found within that many frames, and that a tracked face's
landmarks keep their meaning (model B reads them).
"""

from __future__ import annotations

import numpy as np
import pytest

from dfstream.stream.contract.paths import SAMPLE_CLIP
from dfstream.stream.contract.types import FaceObs
from dfstream.stream.faces import FaceStage
from tests.conftest import read_frames


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return read_frames(SAMPLE_CLIP, limit=120)


def _run(stage: FaceStage, frames: list[np.ndarray]) -> tuple[list[list[FaceObs]], list[int]]:
    found, graphs = [], []
    try:
        for image in frames:
            found.append(stage(image))
            graphs.append(stage.graph_faces)
    finally:
        stage.close()
    return found, graphs


def test_one_face_is_tracked_by_a_graph_for_one_with_the_same_landmarks(clip: list[np.ndarray]) -> None:
    full, full_graphs = _run(FaceStage(max_faces=4), clip)
    sized, graphs = _run(FaceStage(max_faces=4, detect_every=10), clip)
    assert set(full_graphs) == {4}, "a file's stage (detect_every 1) keeps the graph for four"
    assert set(graphs) == {1}, "the first frame's one face did not size the graph at once"
    assert all(len(f) == 1 for f in full) and all(len(f) == 1 for f in sized), "a face lost at the swap"
    # bit for bit on the first frame (both on the graph for four), then a tracking chain of its own:
    # within a pixel on a 170-px face, and the lmk5 values model B reads differ by less than they move
    # from one frame to the next
    np.testing.assert_array_equal(full[0][0].points, sized[0][0].points)
    points = np.array([[f[0].points for f in run] for run in (full, sized)])
    assert np.abs(points[0] - points[1]).mean() < 1.0
    lmk = np.array([[f[0].lmk5 for f in run] for run in (full, sized)])
    apart = np.abs(lmk[0] - lmk[1]).mean()
    jitter = np.abs(np.diff(lmk[0], axis=0)).mean()
    assert 0 < apart < jitter, (apart, jitter)


def _side_by_side(left: list[np.ndarray], right: list[np.ndarray | None]) -> list[np.ndarray]:
    out = []
    for a, b in zip(left, right, strict=True):
        out.append(np.concatenate([a, np.zeros_like(a) if b is None else b], axis=1))
    return out


def test_a_face_that_walks_in_is_found_within_detect_every_frames_and_none_is_lost(clip: list[np.ndarray]) -> None:
    every, arrives, leaves = 5, 40, 80
    right = [None if not arrives <= i < leaves else clip[(i + 60) % len(clip)] for i in range(len(clip))]
    frames = _side_by_side(clip, right)
    found, graphs = _run(FaceStage(max_faces=4, detect_every=every), frames)

    width = clip[0].shape[1]
    left_found = [any(f.bbox[0] < width for f in faces) for faces in found]
    assert all(left_found), f"the tracked face was lost on frames {[i for i, ok in enumerate(left_found) if not ok]}"
    right_found = [any(f.bbox[0] >= width for f in faces) for faces in found]
    assert any(right_found), "the face that walked in was never found"
    first = right_found.index(True)
    assert arrives <= first <= arrives + every + 1, (first, graphs[arrives - 1: first + 2])
    assert all(right_found[first:leaves]), "the new face was dropped after it was found"
    assert graphs[arrives - 1] == 1 and graphs[first] == 2, graphs
    assert not any(right_found[leaves + 1:])
    assert graphs[-1] == 1, "the graph did not shrink back once the face had left"
