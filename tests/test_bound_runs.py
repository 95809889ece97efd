"""The GPU fast path's bound runs, tested on the CPU provider (same code, no CUDA graphs): buckets,
padding, chunking, shape checks, and the providers the GPU path asks for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dfstream.stream import ort_sessions
from dfstream.stream.bound import BUCKETS, BoundRunner, BucketError, bucket_for, check_buckets
from dfstream.stream.gpu_options import CPU, CUDA, TENSORRT
from dfstream.stream.ort_sessions import load_model


def test_a_batch_goes_to_the_smallest_bucket_that_holds_it() -> None:
    assert [bucket_for(n) for n in (1, 2, 4, 5, 16, 17, 64)] == [1, 4, 4, 16, 16, 64, 64]
    with pytest.raises(ValueError, match="exceed the largest bucket 64"):
        bucket_for(65)


def test_buckets_that_do_not_fit_a_graph_are_refused_naming_them() -> None:
    assert check_buckets("enc.onnx", ("batch", 3, 128, 128), BUCKETS) == (3, 128, 128)
    assert check_buckets("one.onnx", (1, 3, 8, 8), (1,)) == (3, 8, 8)
    with pytest.raises(BucketError, match=r"enc.onnx: batch bucket 4 does not fit: .* fixed at 1"):
        check_buckets("enc.onnx", (1, 3, 128, 128), BUCKETS)
    with pytest.raises(BucketError, match="free axes besides the batch"):
        check_buckets("enc.onnx", ("batch", 3, "h", "w"), BUCKETS)
    with pytest.raises(BucketError, match="positive integers"):
        check_buckets("enc.onnx", ("batch", 3), (0, 4))


@pytest.mark.parametrize("role, file", [("frame_cnn", "frame_cnn.onnx"), ("clip_encoder", "clip_encoder.onnx"),
                                        ("clip_head", "clip_head.onnx")])
def test_bound_runs_give_the_plain_runs_answers_for_any_batch(stream_models: Path, role: str, file: str) -> None:
    model = load_model(stream_models / file, role, "cpu")  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])  # type: ignore[arg-type]
    batches = {n: rng.uniform(0, 1, (n, *shape)).astype(np.float32) for n in (1, 3, 5, 70)}
    plain = {n: model.run(b) for n, b in batches.items()}
    model.bind(BUCKETS)
    assert model.bound is not None and model.bound.buckets == BUCKETS
    for n, b in batches.items():  # 3 and 5 are padded, 70 runs as 64 + 6
        got = model.run(b)
        assert got.shape == plain[n].shape
        np.testing.assert_allclose(got, plain[n], atol=1e-5)
    with pytest.raises(ValueError, match="rows of shape"):
        model.run(np.zeros((2, *shape[:-1], shape[-1] + 1), np.float32))


def test_a_graph_with_a_fixed_batch_axis_is_refused_at_start_up(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "fixed", [x], [y])
    path = tmp_path / "fixed.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    session = ort.InferenceSession(str(path), providers=[CPU])
    with pytest.raises(BucketError, match=r"fixed\.onnx: batch bucket 4 does not fit"):
        BoundRunner(session, path.name, "cpu")
    one = BoundRunner(session, path.name, "cpu", buckets=(1,))
    np.testing.assert_array_equal(one.run(np.array([[-1, 2, -3, 4]], np.float32)), [[0, 2, 0, 4]])


def test_the_gpu_path_asks_for_tensorrt_only_when_its_libraries_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort_sessions.ort, "get_available_providers", lambda: [TENSORRT, CUDA, CPU])
    monkeypatch.setattr(ort_sessions, "tensorrt_loads", lambda: True)
    assert ort_sessions.select_providers("cuda") == [TENSORRT, CUDA, CPU]
    monkeypatch.setattr(ort_sessions, "tensorrt_loads", lambda: False)  # the provider is in the wheel, TensorRT is not
    assert ort_sessions.select_providers("auto") == [CUDA, CPU]
    assert ort_sessions.select_providers("cpu") == [CPU]
