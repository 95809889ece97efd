"""Unit tests of single stream pieces: lmk5, ring buffer, tracker, scoring, crops, frame conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfstream.stream.buffer import ClipBuffer
from dfstream.stream.contract.metadata import ModelMetadata
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM, HEAD_FEATURES, FaceObs
from dfstream.stream.crops import InputSpec, crop_face, to_model_input
from dfstream.stream.landmarks import MESH_POINTS, lmk5
from dfstream.stream.scoring import ScoringConfig, TrackScorer, centred
from dfstream.stream.sources.base import to_bgr
from dfstream.stream.tracking import Tracker


def _face_points() -> np.ndarray:
    """A frontal face laid out on the mesh indices lmk5 reads; all other points at the centre."""
    p = np.full((MESH_POINTS, 2), 100.0, dtype=np.float32)
    # right eye (33 outer .. 133 inner), 10 px wide, 3 px open
    p[[33, 160, 158, 133, 153, 144]] = [(60, 80), (63, 78.5), (67, 78.5), (70, 80), (67, 81.5), (63, 81.5)]
    p[[362, 385, 387, 263, 373, 380]] = [(130, 80), (133, 79), (137, 79), (140, 80), (137, 81), (133, 81)]
    p[[13, 14, 61, 291]] = [(100, 130), (100, 136), (85, 133), (115, 133)]
    p[1] = (110, 120)  # nose tip: 10 px right of the eye midpoint (100, 80), 40 px below it
    return p


def test_lmk5_formulas_on_known_geometry() -> None:
    values = lmk5(_face_points())
    iod = 80.0  # |33 - 263|
    np.testing.assert_allclose(values, [3 / 10, 2 / 10, 6 / 30, 10 / iod, 40 / iod], rtol=1e-6)


def test_lmk5_is_scale_and_translation_free_and_needs_the_full_mesh() -> None:
    p = _face_points()
    np.testing.assert_allclose(lmk5(p * 3.0 + 50.0), lmk5(p), rtol=1e-5)
    with pytest.raises(ValueError, match="468 face-mesh points, got 10"):
        lmk5(p[:10])


def test_ring_buffer_wraps_around_in_order_without_reallocating() -> None:
    buf = ClipBuffer()
    rows = buf._rows
    for i in range(CLIP_LEN + 5):
        assert buf.full == (i >= CLIP_LEN)
        buf.push(np.full(EMBED_DIM, i, np.float32), np.full(5, -i, np.float32))
    clip = buf.clip()
    assert buf._rows is rows and clip.shape == (CLIP_LEN, HEAD_FEATURES)
    np.testing.assert_array_equal(clip[:, 0], np.arange(5, CLIP_LEN + 5))
    np.testing.assert_array_equal(clip[:, -1], -np.arange(5, CLIP_LEN + 5))


def _face(x: float, y: float, size: float = 80.0) -> FaceObs:
    return FaceObs(bbox=(x, y, size, size), points=np.zeros((MESH_POINTS, 2), np.float32), lmk5=np.zeros(5))


def test_two_crossing_faces_keep_their_ids() -> None:
    tracker = Tracker()
    ids_left_to_right: list[int] = []
    for step in range(30):
        a = _face(50 + step * 10, 100)  # moves right
        b = _face(350 - step * 10, 110)  # moves left, crosses a around step 15
        faces = [b, a] if step % 2 else [a, b]  # detector order must not matter
        pairs, _ = tracker.update(faces)
        by_face = {id(f): t.track_id for t, f in pairs}
        if step == 0:
            ids_left_to_right = [by_face[id(a)], by_face[id(b)]]
        assert [by_face[id(a)], by_face[id(b)]] == ids_left_to_right, f"ids swapped at step {step}"


def test_tracks_expire_and_a_returning_face_starts_a_new_track() -> None:
    tracker = Tracker(max_missed=3)
    (first, _), = tracker.update([_face(100, 100)])[0]
    for _ in range(3):
        _, ended = tracker.update([])
        assert not ended
    _, ended = tracker.update([])
    assert [t.track_id for t in ended] == [first.track_id]
    (again, _), = tracker.update([_face(100, 100)])[0]
    assert again.track_id != first.track_id


def test_centred_maps_each_threshold_to_one_half() -> None:
    assert centred(0.2, 0.2) == pytest.approx(0.5)
    assert centred(0.0, 0.7) == 0.0 and centred(1.0, 0.7) == pytest.approx(1.0)
    assert centred(0.1, 0.2) == pytest.approx(0.25) and centred(0.6, 0.2) == pytest.approx(0.75)


def test_hysteresis_keeps_the_label_inside_the_band_on_its_side_of_the_threshold() -> None:
    config = ScoringConfig(frame_threshold=0.5, clip_threshold=0.5, ema_alpha=1.0, band=0.1, min_frames=1)
    scorer = TrackScorer(config)
    labels = [scorer.update(p, None).label for p in (0.52, 0.9, 0.55, 0.45, 0.58, 0.3, 0.45, 0.55, 0.62)]
    assert labels == ["uncertain", "fake", "fake", "uncertain", "uncertain", "real", "real", "uncertain", "fake"]


def test_label_and_score_never_disagree() -> None:
    rng = np.random.default_rng(0)
    scorer = TrackScorer(ScoringConfig(frame_threshold=0.3, clip_threshold=0.6))
    for t in range(400):
        got = scorer.update(float(rng.uniform(0, 1)), float(rng.uniform(0, 1)) if t > 15 else None)
        assert got.label != "real" or got.score < 0.5
        assert got.label != "fake" or got.score >= 0.5


def test_a_steady_genuine_face_leaves_uncertain_within_a_second() -> None:
    """Calibrated scores of a genuine face scatter below the threshold; at 30 fps the label must read
    real within 30 frames and never fake."""
    rng = np.random.default_rng(1)
    scorer = TrackScorer(ScoringConfig(frame_threshold=0.5, clip_threshold=0.5))
    labels = []
    for t in range(90):
        p_frame = float(np.clip(rng.normal(0.2, 0.15), 0, 1))
        p_clip = float(np.clip(rng.normal(0.25, 0.1), 0, 1)) if t >= 15 else None
        labels.append(scorer.update(p_frame, p_clip).label)
    assert "real" in labels[:30] and labels[30:] == ["real"] * 60


def test_calibration_maps_even_odds_and_keeps_order() -> None:
    from dfstream.stream.ort_sessions import calibrated

    p = np.array([0.01, 0.2, 0.5, 0.9], np.float32)
    assert np.array_equal(calibrated(p, (1.0, 0.0)), p)
    q = calibrated(p, (0.5, -1.0))
    assert (np.diff(q) > 0).all()  # monotone: rankings (AUC) survive
    assert q[2] == pytest.approx(1 / (1 + np.exp(1.0)), rel=1e-5)  # logit 0 → sigmoid(b)


def test_fusion_uses_both_models_once_the_clip_score_exists() -> None:
    scorer = TrackScorer(ScoringConfig(frame_threshold=0.5, clip_threshold=0.25, ema_alpha=1.0, clip_weight=0.5))
    assert scorer.update(0.5, None).score == pytest.approx(0.5)
    assert scorer.update(0.5, 1.0).score == pytest.approx(0.75)
    assert scorer.update(None, 0.25).score == pytest.approx(0.5)


def test_label_changes_are_reported_once() -> None:
    scorer = TrackScorer(ScoringConfig(frame_threshold=0.5, clip_threshold=0.5, ema_alpha=1.0, min_frames=1))
    changes = [(s.previous, s.label) for s in (scorer.update(p, None) for p in (0.9, 0.9, 0.1, 0.1)) if s.changed]
    assert changes == [("uncertain", "fake"), ("fake", "real")]


def _meta(**kw: object) -> ModelMetadata:
    base = dict(role="frame_cnn", input_layout="NHWC", threshold=0.5, source_sha256="x", exporter="e",
                framework="f", opset=17, input_size=16, color_order="RGB", input_scale="0-255")
    return ModelMetadata(**(base | kw))  # type: ignore[arg-type]


def test_model_input_follows_metadata_colour_scale_and_layout() -> None:
    crop = np.zeros((16, 16, 3), np.uint8)
    crop[..., 0] = 255  # blue in BGR
    rgb255 = to_model_input([crop], InputSpec.of(_meta()))
    assert rgb255.shape == (1, 16, 16, 3) and rgb255[0, 0, 0].tolist() == [0.0, 0.0, 255.0]
    enc = _meta(role="clip_encoder", input_layout="NCHW", color_order="BGR", input_scale="0-1", clip_len=16,
                embed_dim=1280)
    bgr01 = to_model_input([crop, crop], InputSpec.of(enc))
    assert bgr01.shape == (2, 3, 16, 16) and bgr01[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]


def test_crop_is_square_centred_and_black_outside_the_frame() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    crop = crop_face(image, (80.0, 40.0, 20.0, 20.0), 32)  # box centred at (90, 50), crop reaches past x=100
    assert crop.shape == (32, 32, 3)
    assert crop[16, 2].tolist() == [200, 200, 200] and crop[16, 31].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    ("image", "shape"),
    [
        (np.zeros((16, 16), np.uint8), (16, 16, 3)),
        (np.zeros((20, 30, 4), np.uint8), (20, 30, 3)),
        (np.zeros((10, 10, 1), np.uint8), (10, 10, 3)),
        (np.full((12, 12, 3), 65535, np.uint16), (12, 12, 3)),
    ],
)
def test_grey_rgba_and_16_bit_frames_become_bgr_uint8(image: np.ndarray, shape: tuple[int, ...]) -> None:
    out = to_bgr(image)
    assert out.shape == shape and out.dtype == np.uint8
    if image.dtype == np.uint16:
        assert int(out.max()) == 255


def test_16_bit_frames_keep_their_brightness_and_channel_order() -> None:
    """Each 16-bit value maps to its top byte (a converter that truncates to the low byte, or rescales
    per frame, or swaps channels gives other numbers)."""
    levels = np.array([0, 256, 1000, 32768, 65535], np.uint16)
    image = np.stack([levels, levels // 2, levels // 4], axis=-1)[None]  # one row of 5 pixels, B > G > R
    out = to_bgr(image)
    assert out[0, :, 0].tolist() == [0, 1, 3, 128, 255]
    assert out[0, :, 1].tolist() == [0, 0, 1, 64, 127] and out[0, :, 2].tolist() == [0, 0, 0, 32, 63]


def test_window_is_on_by_default_only_when_a_display_exists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dfstream.stream.event_store import EventSink
    from dfstream.stream.local_run import build_sinks
    from dfstream.stream.run_config import RunConfig
    from dfstream.stream.sinks import WindowSink

    def kinds(config: RunConfig) -> list[type]:
        """The sinks besides the event stage, which every run has."""
        sinks = build_sinks(config, [])
        sinks.close()
        assert isinstance(sinks.sinks[0], EventSink)
        return [type(s) for s in sinks.sinks[1:]]

    cfg = RunConfig(sources=("x.mp4",), models_dir=tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert kinds(cfg) == []
    monkeypatch.setenv("DISPLAY", ":99")
    assert kinds(cfg) == [WindowSink]
    assert kinds(cfg.model_copy(update={"window": False})) == []


def test_a_failing_sink_is_switched_off_and_the_others_go_on() -> None:
    from dfstream.stream.contract.types import Frame
    from dfstream.stream.sinks import SinkSet

    class Broken:
        def write(self, frame: Frame, records: object, header: str) -> None:
            raise OSError("disk full")

        def event(self, data: object) -> None: ...

        def close(self) -> None: ...

    class Counting(Broken):
        writes = 0

        def write(self, frame: Frame, records: object, header: str) -> None:
            self.writes += 1

    good = Counting()
    sinks = SinkSet([Broken(), good])  # type: ignore[list-item]
    frame = Frame("s", 0, 1.0, 0, np.zeros((4, 4, 3), np.uint8))
    for _ in range(3):
        sinks.write(frame, [], "")
    assert good.writes == 3 and sinks.failed == ["Broken: disk full"] and len(sinks.sinks) == 1


def test_summary_of_a_source_that_never_opened_says_so_once() -> None:
    from dfstream.stream.summary import RunSummary

    summary = RunSummary(provider="CPUExecutionProvider")
    error = "source rtsp://cam/x: RTSP stream did not open; gave up after 8 attempts"
    summary.sources["rtsp://cam/x"].error = error
    text = summary.text()
    assert "None" not in text and "no frame was scored" in text
    assert "did not open" not in text and "rtsp://cam/x: 0 frames" in text and ", failed" in text


def test_a_forgotten_peer_leaves_no_series_even_when_its_last_records_come_late() -> None:
    """The sinks' thread may deliver a peer's last records and events after the pipeline forgot it."""
    from dfstream.stream.contract.types import Frame
    from dfstream.stream.prometheus import PipelineMetrics

    metrics = PipelineMetrics()
    frame = Frame("peer:abc", 0, 0.0, 0, np.zeros((2, 2, 3), np.uint8))
    metrics.write(frame, [], "")
    metrics.event({"type": "event", "source": "peer:abc", "state": "start"})
    assert b"peer:abc" in metrics.text()
    metrics.forget("peer:abc")
    assert b"peer:abc" not in metrics.text()
    metrics.write(frame, [], "")  # late
    metrics.event({"type": "event", "source": "peer:abc", "state": "end"})
    assert b"peer:abc" not in metrics.text()
    metrics.write(Frame("peer:def", 0, 0.0, 0, np.zeros((2, 2, 3), np.uint8)), [], "")
    assert b"peer:def" in metrics.text()  # the others are still counted


def test_the_header_rate_is_frames_over_time_even_when_frames_come_unevenly() -> None:
    """30 fps on average, in bursts (two frames 1 ms apart, then a 65.7 ms gap): the header says ~30,
    not the ~500 fps a smoothed mean of 1/interval tends to."""
    from dfstream.stream.summary import FrameRates

    rates, t, fps = FrameRates(), 0.0, 0.0
    for i in range(300):
        t += 0.001 if i % 2 else 2 / 30 - 0.001
        fps = rates.tick("cam", t)
    assert 27.0 < fps < 33.0
    assert FrameRates().tick("new", 1.0) == 0.0  # one frame has no rate yet
