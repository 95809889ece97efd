"""int8 variants of model A and the clip encoder (static QDQ quantisation, calibrated on real face crops).

On CPUs with VNNI the int8 graphs run about twice as fast as fp32 (see benchmarks/RESULTS.md).
Calibration crops come from a face video through the stream's own face stage and crop function,
so they are framed exactly like the crops the stream feeds. Half the crops calibrate, the other
half check: the int8 graph must stay within a tolerance of the fp32 graph on them.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from dfstream.exceptions import ExportCheckError, InputPathError
from dfstream.export.attention import add_attention_output, without_attention_output
from dfstream.export.file_names import precision_path
from dfstream.export.metadata import FILE_NAME_OF_ROLE, ModelMetadata
from dfstream.export.onnx_files import write_with_metadata

log = logging.getLogger(__name__)

QUANTIZED_ROLES = ("frame_cnn", "clip_encoder")
"""The clip head (0.3-1 ms, an LSTM) stays fp32."""
INT8_PROB_TOL = 0.05
"""Max |P_int8 - P_fp32| allowed for model A on the check crops."""
INT8_AUC_TOL = 0.01
"""Max |AUC_int8 - AUC_fp32| of model A on held-out images, when they are given."""
INT8_COSINE_MIN = 0.98
"""Min cosine similarity of int8 and fp32 encoder features on the check crops."""


@dataclass(frozen=True)
class QuantizedFile:
    path: Path
    role: str
    agreement: float
    """Model A: max abs probability difference; encoder: min cosine similarity."""


def face_crops(video: Path, limit: int = 64) -> list[np.ndarray]:
    """BGR uint8 crops framed by the stream's crop (large side 512; resized per model later)."""
    import cv2

    from dfstream.stream.crops import crop_face
    from dfstream.stream.faces import FaceStage

    if not video.is_file():
        raise InputPathError(f"calibration video not found: {video}")
    cap = cv2.VideoCapture(str(video))
    step = max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) // limit)  # spread over the whole video
    stage = FaceStage(max_faces=4, video=True)
    crops: list[np.ndarray] = []
    index = 0
    try:
        while len(crops) < limit:
            ok, image = cap.read()
            if not ok:
                break
            faces = stage(image)  # every frame, so the mesh keeps tracking
            if index % step == 0:
                crops += [crop_face(image, f.bbox, 512) for f in faces]
            index += 1
    finally:
        cap.release()
        stage.close()
    if len(crops) < 4:
        raise InputPathError(f"{video}: only {len(crops)} face crops found; calibration needs at least 4")
    return crops[:limit]


def _feeds(meta: ModelMetadata, name: str, crops: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    import cv2

    from dfstream.stream.crops import InputSpec, to_model_input

    spec = InputSpec.of(meta)
    resized = [cv2.resize(c, (spec.size, spec.size), interpolation=cv2.INTER_AREA) for c in crops]
    return [{name: to_model_input([r], spec)} for r in resized]


def quantize_folder(folder: Path, crops: list[np.ndarray], held_out: Path | None = None) -> list[QuantizedFile]:
    """Write ``frame_cnn.int8.onnx`` and ``clip_encoder.int8.onnx`` beside the fp32 graphs.

    ``held_out``: a folder of ``real/`` and ``fake/`` face images (the data build's
    ``frames/test``); model A's int8 AUC on them must then stay within 0.01 of fp32's."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from dfstream.stream.runtime import read_metadata

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
            self._it = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    calib, check = crops[::2], crops[1::2]
    written: list[QuantizedFile] = []
    failed: list[str] = []
    for role in QUANTIZED_ROLES:
        src = folder / FILE_NAME_OF_ROLE[role]
        if not src.is_file():
            raise InputPathError(f"{folder}: {src.name} missing (export it first)")
        meta = read_metadata(src)
        name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        out = precision_path(src, "int8")
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "plain.onnx"
            pre = Path(tmp) / "pre.onnx"
            raw = Path(tmp) / "int8.onnx"
            onnx.save(without_attention_output(onnx.load(str(src))), str(plain))
            quant_pre_process(str(plain), str(pre))
            # 7-bit weights (reduce_range): x86 CPUs without VNNI multiply u8 by s8 in 16-bit pairs that can
            # saturate (ONNX Runtime's quantisation notes); on such a CPU the untrained test model A moved
            # by 0.0915 in P without it, within 0.05 with it. The graph must hold on any CPU it runs on.
            # Percentile calibration (99.999 %) clips the rare extreme activations that min/max would fit,
            # so the common range keeps more of the 8 bits: trained model A moved by 0.070 in P with
            # min/max and by 0.033 with this on the sample clip's check crops.
            quantize_static(str(pre), str(raw), Reader(_feeds(meta, name, calib)), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            reduce_range=True, calibrate_method=CalibrationMethod.Percentile)
            int8 = onnx.load(str(raw))
            int8_meta = meta.with_precision("int8")
            if meta.attention_output is not None and not add_attention_output(int8):
                log.warning("%s: the attention output could not be restored after quantisation", out.name)
                int8_meta = replace(int8_meta, attention_output=None)
            checked = Path(tmp) / out.name
            write_with_metadata(int8, int8_meta, checked)
            try:  # a graph that fails is never kept; the other may still pass
                agreement = _check(role, src, checked, _feeds(meta, name, check))
                if role == "frame_cnn" and held_out is not None:
                    _check_auc(src, checked, meta, name, held_out)
            except ExportCheckError as exc:
                out.unlink(missing_ok=True)  # an older variant would no longer match its fp32 graph
                failed.append(str(exc))
                continue
            shutil.move(str(checked), str(out))
        written.append(QuantizedFile(out, role, agreement))
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
    if failed:
        raise ExportCheckError("; ".join(failed) + " (kept in fp32: --precision int8 uses fp32 for it)")
    return written


def _check_auc(fp32: Path, int8: Path, meta: ModelMetadata, name: str, folder: Path) -> None:
    """Model A's held-out AUC: int8 within ``INT8_AUC_TOL`` of fp32 on ``folder/{real,fake}``."""
    import cv2
    import onnxruntime as ort
    from sklearn.metrics import roc_auc_score

    paths = [(p, label) for label, sub in ((0, "real"), (1, "fake")) for p in sorted((folder / sub).glob("*.jpg"))]
    if not any(y for _, y in paths) or all(y for _, y in paths):
        raise InputPathError(f"{folder}: needs real/ and fake/ images for the held-out check")
    crops = [cv2.imread(str(p)) for p, _ in paths]
    feeds = _feeds(meta, name, [c for c in crops if c is not None])
    labels = np.array([y for (_, y), c in zip(paths, crops, strict=True) if c is not None])
    aucs = []
    for path in (fp32, int8):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        p = np.concatenate([session.run(None, f)[0] for f in feeds]).ravel()
        aucs.append(float(roc_auc_score(labels, p if meta.positive_class == "fake" else -p)))
    print(f"{int8.name}: held-out AUC {aucs[1]:.4f} (fp32 {aucs[0]:.4f}) on {len(labels)} images of {folder}")
    if abs(aucs[1] - aucs[0]) > INT8_AUC_TOL:
        raise ExportCheckError(f"{int8.name}: held-out AUC {aucs[1]:.4f} differs from fp32's {aucs[0]:.4f} "
                               f"by more than {INT8_AUC_TOL}")


def _check(role: str, fp32: Path, int8: Path, feeds: list[dict[str, np.ndarray]]) -> float:
    import onnxruntime as ort

    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    ref = np.concatenate([a.run(None, f)[0] for f in feeds]).astype(np.float64)
    got = np.concatenate([b.run(None, f)[0] for f in feeds]).astype(np.float64)
    if role == "frame_cnn":
        diff = float(np.abs(ref - got).max())
        print(f"{int8.name}: max |P_int8 - P_fp32| {diff:.4f} on {len(feeds)} held-out crops (limit {INT8_PROB_TOL})")
        if diff > INT8_PROB_TOL:
            raise ExportCheckError(f"{int8.name}: int8 differs from fp32 by {diff:.4f} (> {INT8_PROB_TOL})")
        return diff
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    worst = float(cos.min())
    print(f"{int8.name}: min cosine(int8, fp32) {worst:.4f} on {len(feeds)} held-out crops (limit {INT8_COSINE_MIN})")
    if worst < INT8_COSINE_MIN:
        raise ExportCheckError(f"{int8.name}: int8 features drift from fp32 (cosine {worst:.4f} < {INT8_COSINE_MIN})")
    return worst
