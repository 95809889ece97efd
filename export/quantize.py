"""int8 variants of model A and the clip encoder (static QDQ quantisation, calibrated on real face crops).

On CPUs with VNNI the int8 graphs run about twice as fast as fp32 (see benchmarks/RESULTS.md).
Calibration crops come from face videos (through the stream's own face stage) and from folders of
face images that the data build cut with the same crop function, so they are framed exactly like
the crops the stream feeds. Half the crops calibrate, the other half check: the int8 graph must
stay within a tolerance of the fp32 graph on them.
"""

from __future__ import annotations

import contextlib
import io
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from dfstream.export.attention import add_attention_output, without_attention_output
from dfstream.export.onnx_files import write_with_metadata
from dfstream.stream.contract.exceptions import ExportCheckError, InputPathError
from dfstream.stream.contract.file_names import precision_path
from dfstream.stream.contract.metadata import FILE_NAME_OF_ROLE, ModelMetadata
from dfstream.stream.contract.variants import roles_with
from dfstream.stream.faces import face_crops

log = logging.getLogger(__name__)

QUANTIZED_ROLES = roles_with("int8")
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


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def folder_crops(folder: Path, limit: int) -> list[np.ndarray]:
    """Face images of a folder and its subfolders (e.g. the data build's ``frames/train``, cropped by
    the stream's own crop), ``limit`` of them spread evenly over the sorted names."""
    import cv2

    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < 4:
        raise InputPathError(f"{folder}: only {len(paths)} face images found; calibration needs at least 4")
    picked = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(limit, len(paths)))]
    crops = [c for c in (cv2.imread(str(p)) for p in picked) if c is not None]
    if len(crops) < 4:
        raise InputPathError(f"{folder}: only {len(crops)} of its images decode; calibration needs at least 4")
    return crops


def calibration_crops(sources: list[Path], limit: int = 64) -> list[np.ndarray]:
    """Crops from face videos and folders of face images, shared evenly and interleaved, so that the
    calibrating half and the checking half (even and odd positions) each hold every source."""
    per = max(4, limit // max(1, len(sources)))
    pools = []
    for source in sources:
        if source.is_dir():
            pools.append(folder_crops(source, per))
        elif source.is_file():
            pools.append(face_crops(source, per))
        else:
            raise InputPathError(f"calibration source not found: {source}")
    mixed = [pool[i] for i in range(max(len(p) for p in pools)) for pool in pools if i < len(pool)]
    return mixed[:limit]


def _feeds(meta: ModelMetadata, name: str, crops: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    import cv2

    from dfstream.stream.crops import InputSpec, to_model_input

    spec = InputSpec.of(meta)
    resized = [cv2.resize(c, (spec.size, spec.size), interpolation=cv2.INTER_AREA) for c in crops]
    return [{name: to_model_input([r], spec)} for r in resized]


QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")
"""The ops that hold the time (model A's six convolutions are 82 % of it). Gates, sigmoids, adds and
products stay fp32: quantising them as well moved trained model A's P by up to 0.35 on data-set crops."""
MAX_KEPT_FP32 = 3
"""Most quantisable nodes the search keeps in fp32 before a graph is declared failed."""
SEARCH_LIMIT = 16
"""Graphs with more quantisable nodes than this are not searched (one trial per node per round)."""


class _Reader:
    """Calibration feeds for ONNX Runtime's calibrator (its CalibrationDataReader protocol)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _quantize(pre: Path, out: Path, feeds: list[dict[str, np.ndarray]], keep_fp32: list[str]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # 7-bit weights (reduce_range): x86 CPUs without VNNI multiply u8 by s8 in 16-bit pairs that can
    # saturate (ONNX Runtime's quantisation notes); on such a CPU the untrained test model A moved
    # by 0.0915 in P without it, within 0.05 with it. The graph must hold on any CPU it runs on.
    # Percentile calibration (99.999 %) clips the rare extreme activations that min/max would fit,
    # so the common range keeps more of the 8 bits.
    with contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints its progress on every trial
        quantize_static(str(pre), str(out), _Reader(feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=True, calibrate_method=CalibrationMethod.Percentile,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep_fp32)


def _classifier_tail(model: onnx.ModelProto) -> list[str]:
    """The last quantisable node and everything after it: the layer that makes the output stays fp32."""
    names = [n.name for n in model.graph.node]
    heavy = [i for i, n in enumerate(model.graph.node) if n.op_type in QUANTIZED_OPS]
    return names[heavy[-1]:] if heavy else []


class _Judge:
    """Runs a graph on the check crops and compares it with fp32 (model A: max |ΔP|; encoder: min cosine)."""

    def __init__(self, role: str, fp32: Path, feeds: list[dict[str, np.ndarray]]) -> None:
        self.role, self.feeds = role, feeds
        self.ref = self._outputs(fp32)

    def _outputs(self, path: Path) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs: list[np.ndarray] = [session.run(None, f)[0] for f in self.feeds]
        return np.asarray(np.concatenate(outputs), dtype=np.float64)

    def agreement(self, path: Path) -> float:
        got = self._outputs(path)
        if self.role == "frame_cnn":
            return float(np.abs(self.ref - got).max())
        ref = self.ref
        cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
        return float(cos.min())

    def passes(self, value: float) -> bool:
        return value <= INT8_PROB_TOL if self.role == "frame_cnn" else value >= INT8_COSINE_MIN

    def badness(self, value: float) -> float:
        """Lower is closer to fp32, for either measure."""
        return value if self.role == "frame_cnn" else -value


def _search(pre: Path, tmp: Path, feeds: list[dict[str, np.ndarray]], judge: _Judge) -> tuple[Path, list[str]]:
    """Quantise, and while the check fails keep in fp32 the node whose int8 moves the output most
    (one trial per quantisable node and round, at most ``MAX_KEPT_FP32`` rounds).

    Returns the quantised graph of the best trial and the nodes the search kept in fp32 (besides the
    output layer, which always stays fp32)."""
    model = onnx.load(str(pre))
    tail = _classifier_tail(model)
    keep = list(tail)
    best_graph = tmp / "trial-0.onnx"
    _quantize(pre, best_graph, feeds, keep)
    value = judge.agreement(best_graph)
    candidates = [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS and n.name not in keep]
    if len(candidates) > SEARCH_LIMIT:
        return best_graph, []
    for round_ in range(1, MAX_KEPT_FP32 + 1):
        if judge.passes(value):
            break
        scores: dict[str, tuple[float, Path]] = {}
        for i, node in enumerate(candidates):
            trial = tmp / f"trial-{round_}-{i}.onnx"
            _quantize(pre, trial, feeds, [*keep, node])
            scores[node] = judge.agreement(trial), trial
        best = min(scores, key=lambda node: judge.badness(scores[node][0]))
        for node, (_, trial) in scores.items():  # one graph per round is kept on disk
            if node != best:
                trial.unlink()
        if judge.badness(scores[best][0]) >= judge.badness(value):
            break
        keep.append(best)
        candidates.remove(best)
        value, best_graph = scores[best]
        log.info("%s: keeping %s in fp32 (check %.4f)", judge.role, best, value)
    return best_graph, keep[len(tail):]


def quantize_folder(folder: Path, crops: list[np.ndarray], held_out: Path | None = None,
                    roles: Sequence[str] = QUANTIZED_ROLES) -> list[QuantizedFile]:
    """Write ``frame_cnn.int8.onnx`` and ``clip_encoder.int8.onnx`` (or those of ``roles``) beside the fp32 graphs.

    ``held_out``: a folder of ``real/`` and ``fake/`` face images (the data build's
    ``frames/test``); model A's int8 AUC on them must then stay within 0.01 of fp32's."""
    import onnxruntime as ort
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from dfstream.stream.ort_sessions import read_metadata

    calib, check = crops[::2], crops[1::2]
    written: list[QuantizedFile] = []
    failed: list[str] = []
    unknown = [r for r in roles if r not in QUANTIZED_ROLES]
    if unknown:
        raise InputPathError(f"cannot quantise {', '.join(unknown)}; choose among {', '.join(QUANTIZED_ROLES)}")
    for role in roles:
        src = folder / FILE_NAME_OF_ROLE[role]
        if not src.is_file():
            raise InputPathError(f"{folder}: {src.name} missing (export it first)")
        meta = read_metadata(src)
        name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
        out = precision_path(src, "int8")
        with tempfile.TemporaryDirectory() as tmp:
            plain = Path(tmp) / "plain.onnx"
            pre = Path(tmp) / "pre.onnx"
            onnx.save(without_attention_output(onnx.load(str(src))), str(plain))
            quant_pre_process(str(plain), str(pre))
            judge = _Judge(role, plain, _feeds(meta, name, check))
            calib_feeds = _feeds(meta, name, calib)
            best, searched = _search(pre, Path(tmp), calib_feeds, judge)
            int8 = onnx.load(str(best))
            int8_meta = meta.with_precision("int8")
            if meta.attention_output is not None and not add_attention_output(int8):
                log.warning("%s: the attention output could not be restored after quantisation", out.name)
                int8_meta = replace(int8_meta, attention_output=None)
            checked = Path(tmp) / out.name
            write_with_metadata(int8, int8_meta, checked)
            try:  # a graph that fails is never kept; the other may still pass
                agreement = _check(judge, checked, searched)
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


def _check(judge: _Judge, int8: Path, searched: list[str]) -> float:
    value = judge.agreement(int8)
    n = len(judge.feeds)
    kept = f"; kept in fp32 besides the output layer: {', '.join(searched)}" if searched else ""
    if judge.role == "frame_cnn":
        print(f"{int8.name}: max |P_int8 - P_fp32| {value:.4f} on {n} held-out crops (limit {INT8_PROB_TOL}){kept}")
        if not judge.passes(value):
            raise ExportCheckError(f"{int8.name}: int8 differs from fp32 by {value:.4f} (> {INT8_PROB_TOL})")
        return value
    print(f"{int8.name}: min cosine(int8, fp32) {value:.4f} on {n} held-out crops (limit {INT8_COSINE_MIN}){kept}")
    if not judge.passes(value):
        raise ExportCheckError(f"{int8.name}: int8 features drift from fp32 (cosine {value:.4f} < {INT8_COSINE_MIN})")
    return value
