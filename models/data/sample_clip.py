"""Make the bundled sample clip: a public-domain portrait with camera motion, genuine then manipulated.

The photo is matplotlib's ``grace_hopper.jpg`` (public domain, shipped in matplotlib's
``mpl-data/sample_data``). The clip pans, zooms and rolls over it with sensor noise; from
``fake_from`` to ``fake_to`` seconds the face is self-blended (``manipulate.self_blend``), the
mask following the face frame by frame. Regenerate with::

    python -m dfstream.models.data.sample_clip --out dfstream/assets/sample_face.mp4
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from dfstream.models.data.manipulate import apply_affine, camera_motion, self_blend
from dfstream.paths import SAMPLE_CLIP
from dfstream.stream.faces import FaceStage


def grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def make_sample_clip(
    photo: Path,
    out: Path,
    seconds: float = 8.0,
    fps: int = 30,
    size: tuple[int, int] = (640, 480),
    fake_from: float = 3.0,
    fake_to: float = 5.5,
    seed: int = 0,
) -> dict[str, int]:
    """Write the clip; returns frame counts per kind."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {photo}")
    stage = FaceStage(max_faces=1, video=False)
    faces = stage(image)
    stage.close()
    if not faces:
        raise SystemExit(f"no face found in {photo}")
    points = faces[0].points
    rng = np.random.default_rng(seed)
    counts = {"genuine": 0, "manipulated": 0}
    out.parent.mkdir(parents=True, exist_ok=True)
    # faststart: the index comes first, so a browser streams it and a truncated copy still plays
    with av.open(str(out), mode="w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "slow", "crf": "26"}
        for i in range(int(seconds * fps)):
            t = i / fps
            m = camera_motion(t, size, image.shape[:2])
            frame = cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            if fake_from <= t < fake_to:
                frame = self_blend(frame, apply_affine(points, m))
                counts["manipulated"] += 1
            else:
                counts["genuine"] += 1
            noisy = frame.astype(np.float32) + rng.normal(0.0, 2.0, frame.shape)
            frame = np.clip(noisy, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=None, help="portrait to animate (default: Grace Hopper)")
    parser.add_argument("--out", type=Path, default=SAMPLE_CLIP)
    args = parser.parse_args()
    counts = make_sample_clip(args.photo or grace_hopper(), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB): {counts}")


if __name__ == "__main__":
    main()
