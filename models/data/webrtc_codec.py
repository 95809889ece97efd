"""Frames through a WebRTC video codec and back: what a browser call delivers to the server.

A browser sends its camera as VP8 (or VP9) from libvpx in real-time mode, at the bitrate its
congestion control allows, and aiortc decodes it with libvpx. The round trip here encodes with
aiortc's own libvpx settings (constant bitrate, real-time deadline, no look-ahead, its noise and
static thresholds) and decodes with libvpx, so each frame comes back as the server would get it
from a call at that bitrate. Real calls start low (Chromium ~300 kbps) and ramp up while the link
allows; aiortc bounds its own sender between 250 kbps and 1.5 Mbps.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from dfstream.stream.contract.exceptions import InputPathError

WebrtcCodec = Literal["vp8", "vp9"]
WEBRTC_CODECS: tuple[WebrtcCodec, ...] = ("vp8", "vp9")
CALL_BITRATE = 500_000
"""aiortc's start bitrate (bits per second): a call on a modest link."""
_ENCODER = {"vp8": "libvpx", "vp9": "libvpx-vp9"}


class CodecRoundTrip:
    """One stream's frames, in order, through the codec and back (the encoder keeps state across frames)."""

    def __init__(self, codec: WebrtcCodec, bitrate: int = CALL_BITRATE, fps: float = 30.0) -> None:
        self.codec, self.bitrate = codec, bitrate
        self._rate = Fraction(round(fps * 1000), 1000)
        self._encoder: av.VideoCodecContext | None = None
        self._decoder = av.CodecContext.create(_ENCODER[codec], "r")
        self._n = 0

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        enc = av.CodecContext.create(_ENCODER[self.codec], "w")
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.bit_rate, enc.framerate, enc.time_base = self.bitrate, self._rate, 1 / self._rate
        enc.gop_size, enc.qmin, enc.qmax = 3000, 2, 56
        options = {  # aiortc's Vp8Encoder: CBR at the target, real time, no look-ahead
            "bufsize": str(self.bitrate), "minrate": str(self.bitrate), "maxrate": str(self.bitrate),
            "deadline": "realtime", "lag-in-frames": "0", "overshoot-pct": "15", "undershoot-pct": "100",
            "static-thresh": "1", "cpu-used": "-6" if self.codec == "vp8" else "8",
        }
        if self.codec == "vp8":
            options |= {"noise-sensitivity": "4", "partitions": "0"}
        enc.options = options
        return enc

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """``bgr`` as the far end decodes it (same size; an odd side loses its last row or column)."""
        h, w = bgr.shape[0] & ~1, bgr.shape[1] & ~1
        if self._encoder is None:
            self._encoder = self._open(w, h)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr[:h, :w]), format="bgr24").reformat(
            format="yuv420p")
        frame.pts, frame.time_base = self._n, self._encoder.time_base
        self._n += 1
        decoded = [f for p in self._encoder.encode(frame) for f in self._decoder.decode(p)]
        if not decoded:
            raise RuntimeError(f"{self.codec}: the encoder held a frame back (look-ahead should be off)")
        return decoded[-1].to_ndarray(format="bgr24")


def round_trip_video(src: Path, dst: Path, codec: WebrtcCodec, bitrate: int = CALL_BITRATE) -> int:
    """Every frame of ``src`` through the codec and back, written losslessly (FFV1 in Matroska) to
    ``dst`` at the source's fps; returns the frames written."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise InputPathError(f"cannot read video: {src}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    trip = CodecRoundTrip(codec, bitrate, fps)
    dst.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with av.open(str(dst), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(round(fps * 1000), 1000))
        stream.pix_fmt = "bgr0"
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                back = trip(bgr)
                if n == 0:
                    stream.width, stream.height = back.shape[1], back.shape[0]
                out.mux(stream.encode(av.VideoFrame.from_ndarray(back, format="bgr24")))
                n += 1
            out.mux(stream.encode(None))
        finally:
            cap.release()
    if n == 0:
        raise InputPathError(f"no frame could be read from {src}")
    return n
