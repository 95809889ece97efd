"""Model B (.pth state dict) → clip_encoder, clip_head and clip_full graphs, checked against torch.

The encoder runs once per new face crop and the head over the 16 cached rows; the full graph
exists to prove head(encoder(frames)) equals the whole model.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dfstream.export.onnx_files import (
    OPSET,
    ExportedFile,
    base_metadata_versions,
    to_fp16,
    write_with_metadata,
)
from dfstream.export.verify import FP16_TOL, FP32_TOL, check_informative, check_parity, run_onnx
from dfstream.stream.contract.exceptions import ExportCheckError
from dfstream.stream.contract.file_names import fp16_path, sha256_of
from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE, LAYOUT_OF_ROLE, ModelMetadata, Role
from dfstream.stream.contract.types import CLIP_LEN, EMBED_DIM, LMK_DIM, LMK_SPEC

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

PROBE_CLIPS = 2


def probe_clips(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """B×T×3×S×S frames in 0..1 (noise blended with smooth ramps) and B×T×5 landmark values."""
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.linspace(0, 1, size), np.linspace(0, 1, size), indexing="ij")
    ramp = np.stack([xs, ys, 1 - xs])[None, None]
    noise = rng.uniform(0, 1, (PROBE_CLIPS, CLIP_LEN, 3, size, size))
    mix = rng.uniform(0.2, 0.8, (PROBE_CLIPS, CLIP_LEN, 1, 1, 1))
    frames = (mix * noise + (1 - mix) * ramp).astype(np.float32)
    lmks = rng.uniform(0, 1, (PROBE_CLIPS, CLIP_LEN, LMK_DIM)).astype(np.float32)
    return frames, lmks


def export_clip_model(
    pth_path: Path,
    out_dir: Path,
    threshold: float,
    input_size: int,
    fp16: bool = False,
    calibration: tuple[float, float] = (1.0, 0.0),
) -> list[ExportedFile]:
    """Write the three graphs (+ fp16 variants), each verified against torch before returning."""
    import torch

    from dfstream.models import clip_lstm

    model = clip_lstm.load_state(pth_path)
    frames, lmks = probe_clips(input_size)
    b, t = frames.shape[:2]
    flat = frames.reshape(b * t, 3, input_size, input_size)
    with torch.no_grad():
        emb = model.encode(torch.from_numpy(flat))
        feats = torch.cat([emb.reshape(b, t, EMBED_DIM), torch.from_numpy(lmks)], dim=2)
        # A trained encoder may map every synthetic probe frame to nearly the same features, so
        # the head is also probed with those features spread by noise of their own scale: its
        # parity is about the graph, and inputs that move its output are what make it evidence.
        spread = torch.randn(feats.shape, generator=torch.Generator().manual_seed(0)) * emb.std().clamp(min=1e-3)
        feats = feats + spread
        ref = {
            "clip_encoder": emb.numpy(),
            "clip_head": model.head(feats).numpy(),
            "clip_full": model(torch.from_numpy(frames), torch.from_numpy(lmks)).numpy(),
        }
    check_informative("clip_encoder", ref["clip_encoder"])
    check_informative("clip_head", ref["clip_head"])
    try:  # the parity graph composes the two checked above; its own probes may saturate
        check_informative("clip_full", ref["clip_full"])
    except ExportCheckError as exc:
        log.warning("%s (encoder and head were each checked on informative inputs)", exc)

    meta = ModelMetadata(
        role="clip_encoder",
        input_layout="NCHW",
        input_size=input_size,
        color_order=clip_lstm.COLOR_ORDER,  # type: ignore[arg-type]
        input_scale=clip_lstm.INPUT_SCALE,  # type: ignore[arg-type]
        threshold=threshold,
        calibration=calibration,
        clip_len=CLIP_LEN,
        embed_dim=EMBED_DIM,
        source_sha256=sha256_of(pth_path),
        exporter=f"torch.onnx (TorchScript) {torch.__version__}",
        framework=f"torch {torch.__version__}",
        opset=OPSET,
        **base_metadata_versions(),  # type: ignore[arg-type]
    )
    clip_meta = dataclasses.replace(meta, lmk_dim=LMK_DIM, lmk_spec=LMK_SPEC)
    targets: list[tuple[Role, object, tuple[torch.Tensor, ...], list[str], ModelMetadata]] = [
        ("clip_encoder", clip_lstm.EncoderGraph(model), (torch.from_numpy(flat),), ["frames"], meta),
        ("clip_head", clip_lstm.HeadGraph(model), (feats,), ["features"], clip_meta),
        ("clip_full", model, (torch.from_numpy(frames), torch.from_numpy(lmks)), ["frames", "lmk5"], clip_meta),
    ]
    written: list[ExportedFile] = []
    paths: dict[str, Path] = {}
    for role, module, args, names, base in targets:
        role_meta = dataclasses.replace(base, role=role, input_layout=LAYOUT_OF_ROLE[role])  # type: ignore[arg-type]
        path = out_dir / FILE_NAME_OF_ROLE[role]
        onnx_model = trace_to_onnx(module, args, names)
        write_with_metadata(onnx_model, role_meta, path)
        feeds = {n: a.numpy() for n, a in zip(names, args, strict=True)}
        diff = check_parity(path.name, ref[role], run_onnx(path, feeds), FP32_TOL)
        written.append(ExportedFile(path, role, "fp32", diff))
        paths[role] = path
        if fp16:
            half = fp16_path(path)
            write_with_metadata(to_fp16(onnx_model), role_meta.with_precision("fp16"), half)
            diff = check_parity(half.name, ref[role], run_onnx(half, feeds), FP16_TOL)
            written.append(ExportedFile(half, role, "fp16", diff))
    check_split_equals_full(paths, frames, lmks)
    return written


def check_split_equals_full(paths: dict[str, Path], frames: np.ndarray, lmks: np.ndarray) -> float:
    """head(encoder(frames) ⊕ lmk5) from ONNX Runtime must equal the full graph (≤1e-4)."""
    b, t = frames.shape[:2]
    emb = run_onnx(paths["clip_encoder"], {"frames": frames.reshape(b * t, *frames.shape[2:])})
    feats = np.concatenate([emb.reshape(b, t, EMBED_DIM), lmks], axis=2)
    split = run_onnx(paths["clip_head"], {"features": feats})
    full = run_onnx(paths["clip_full"], {"frames": frames, "lmk5": lmks})
    diff: float = check_parity("head(encoder(frames)) vs clip_full", full, split, FP32_TOL)
    return diff


def trace_to_onnx(module: object, args: tuple[object, ...], names: list[str]) -> onnx.ModelProto:
    """TorchScript exporter (needs onnx only) with batch axes dynamic; returns the ModelProto."""
    import io
    import warnings

    import onnx
    import torch

    buf = io.BytesIO()
    # Tracing warns about Python-side shape checks inside nn.LSTM and about LSTM batch sizes; the
    # parity checks that follow (and tests at other batch sizes) are what decide.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
    warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
    dynamic = {n: {0: "batch"} for n in names} | {"score": {0: "batch"}}
    torch.onnx.export(
        module,  # type: ignore[arg-type]
        args,
        buf,  # type: ignore[arg-type]
        input_names=names,
        output_names=["score"],
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
        do_constant_folding=True,
    )
    return onnx.load_model_from_string(buf.getvalue())
