"""Export untrained (seeded, random-weight) models A and B through the real export path.

For tests of the streaming runtime (tiny input sizes run fast) and as stand-ins while no trained
models are bundled: the graphs, metadata and parity checks are real, the scores mean nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from dfstream.export.onnx_files import ExportedFile


def export_untrained(out_dir: Path, frame_size: int = 32, clip_size: int = 64, seed: int = 0) -> list[ExportedFile]:
    """Write frame_cnn.onnx, clip_encoder.onnx, clip_head.onnx and clip_full.onnx into ``out_dir``."""
    import keras
    import torch

    from dfstream.export.keras_onnx import export_frame_model
    from dfstream.export.torch_onnx import export_clip_model
    from dfstream.models import cnn_cbam
    from dfstream.models.clip_lstm import ClipDetector, randomize_batchnorm
    from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        keras.utils.set_random_seed(seed)  # some seeds saturate the sigmoid and export refuses them
        cnn_cbam.build_model(frame_size).save(Path(tmp) / "frame.keras")
        files = export_frame_model(Path(tmp) / "frame.keras", out_dir / FILE_NAME_OF_ROLE["frame_cnn"], threshold=0.5)
        torch.manual_seed(seed)
        model = ClipDetector()
        randomize_batchnorm(model, seed=seed + 1)
        torch.save(model.state_dict(), Path(tmp) / "clip.pth")
        files += export_clip_model(Path(tmp) / "clip.pth", out_dir, threshold=0.5, input_size=clip_size)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description="Export untrained stand-in models (scores mean nothing).")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frame-size", type=int, default=32)
    parser.add_argument("--clip-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for f in export_untrained(args.out, args.frame_size, args.clip_size, args.seed):
        print(f"{f.path} ({f.path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
