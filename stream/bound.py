"""Bound runs for the GPU fast path: fixed batch buckets, device buffers, one CUDA graph per bucket.

A plain ``session.run`` allocates its output and copies input and output across the bus on every
call. Here each bucket (1, 4, 16, 64 crops) owns an input and an output buffer on the device, bound
once (ONNX Runtime's IO binding): a batch is padded to the smallest bucket that holds it and the
bucket is copied in once; its output comes back whole (ONNX Runtime copies an OrtValue only whole;
at most 64 rows of 1,280 floats, 328 KB) and is cut to the rows asked for. ONNX Runtime replays a CUDA graph only when a
run sees the same shapes at the same addresses, which fixed buffers per bucket give, so each bucket
also gets its own graph (``gpu_graph_id``). The same code runs on the CPU provider (without graphs),
which is how it is tested on machines without a GPU.

Graph ids start at 1: a run without ``gpu_graph_id`` means graph 0, and the probes here and every
plain run elsewhere say -1 (no capture). A bucket's graph is captured on its first run, on the thread
that makes it (the lane or scorer that serves the model), not at start-up on another thread: ONNX
Runtime keeps captured graphs per thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort

from dfstream.stream.contract.exceptions import DfstreamError

log = logging.getLogger(__name__)

_DTYPES: dict[str, type[np.generic]] = {"tensor(float)": np.float32, "tensor(float16)": np.float16}

BUCKETS: tuple[int, ...] = (1, 4, 16, 64)
"""Batch sizes the bound graphs are captured for; bigger batches run in chunks of the largest."""


class BucketError(DfstreamError):
    """A batch bucket that a graph's input cannot take (raised at start-up)."""


def bucket_for(n: int, buckets: Sequence[int] = BUCKETS) -> int:
    """The smallest bucket that holds ``n`` rows (``n`` ≤ the largest bucket)."""
    for b in sorted(buckets):
        if n <= b:
            return b
    raise ValueError(f"{n} rows exceed the largest bucket {max(buckets)}")


def check_buckets(name: str, shape: Sequence[int | str | None], buckets: Sequence[int]) -> tuple[int, ...]:
    """The per-row shape of a graph input, after checking that every bucket fits its batch axis."""
    if not buckets or any(not isinstance(b, int) or b < 1 for b in buckets):
        raise BucketError(f"{name}: batch buckets must be positive integers, got {list(buckets)}")
    batch, rest = shape[0], shape[1:]
    if isinstance(batch, int):
        wrong = [b for b in buckets if b != batch]
        if wrong:
            raise BucketError(f"{name}: batch bucket {wrong[0]} does not fit: the graph's batch axis is fixed at "
                              f"{batch} (export it with a dynamic batch axis, or use buckets {batch})")
    if not all(isinstance(d, int) and d > 0 for d in rest):
        raise BucketError(f"{name}: input shape {list(shape)} has free axes besides the batch; "
                          "bound runs need every other axis fixed")
    return tuple(int(d) for d in rest)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Slot:
    """One bucket's device buffers, binding and run options."""

    rows: int
    host: np.ndarray
    input: ort.OrtValue
    output: ort.OrtValue
    binding: ort.IOBinding
    options: ort.RunOptions
    graph_id: int | None
    """The bucket's CUDA graph id (from 1), None without graphs."""


class BoundRunner:
    """Runs one single-input, single-output graph through per-bucket device buffers."""

    def __init__(self, session: ort.InferenceSession, name: str, device: str, buckets: Sequence[int] = BUCKETS,
                 cuda_graphs: bool = False) -> None:
        arg, result = session.get_inputs()[0], session.get_outputs()[0]
        self.name = name
        self.row_shape = check_buckets(name, arg.shape, buckets)
        self.dtype = _DTYPES.get(arg.type, np.float32)
        """float16 for the fp16 graphs (`dfstream export --fp16`), float32 otherwise."""
        self.device = device
        self.cuda_graphs = cuda_graphs
        self._session = session
        self._slots: dict[int, _Slot] = {}
        self.captured_on: dict[int, int] = {}
        """Bucket → the thread (``threading.get_ident``) whose first run captured its graph."""
        output_name, out_dtype = result.name, _DTYPES.get(result.type, np.float32)
        probe = ort.RunOptions()
        probe.add_run_config_entry("gpu_graph_id", "-1")  # shapes only: neither capture nor replay
        for graph_id, rows in enumerate(sorted(set(buckets)), start=1):
            host = np.zeros((rows, *self.row_shape), self.dtype)
            out_shape = session.run([output_name], {arg.name: host}, probe)[0].shape  # the bucket's output shape
            value_in = ort.OrtValue.ortvalue_from_numpy(host, device, 0)
            value_out = ort.OrtValue.ortvalue_from_shape_and_type(list(out_shape), out_dtype, device, 0)
            binding = session.io_binding()
            binding.bind_ortvalue_input(arg.name, value_in)
            binding.bind_ortvalue_output(output_name, value_out)
            options = ort.RunOptions()
            if cuda_graphs:
                options.add_run_config_entry("gpu_graph_id", str(graph_id))
            self._slots[rows] = _Slot(rows, host, value_in, value_out, binding, options,
                                      graph_id if cuda_graphs else None)
        self.buckets = tuple(sorted(self._slots))
        log.debug("%s: bound runs on %s for buckets %s%s", name, device, self.buckets,
                  " with CUDA graphs" if cuda_graphs else "")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The graph's first output for ``batch`` (rows of :attr:`row_shape`), in chunks of the largest bucket."""
        if tuple(batch.shape[1:]) != self.row_shape:
            raise ValueError(f"{self.name}: rows of shape {tuple(batch.shape[1:])}, the bound graph takes "
                             f"{self.row_shape}")
        largest = self.buckets[-1]
        parts = [self._run_chunk(batch[i:i + largest]) for i in range(0, len(batch), largest)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def _run_chunk(self, chunk: np.ndarray) -> np.ndarray:
        n = len(chunk)
        slot = self._slots[bucket_for(n, self.buckets)]
        slot.host[:n] = chunk
        slot.host[n:] = 0.0  # padding rows: scored and dropped
        slot.input.update_inplace(slot.host)  # the one copy to the device
        if slot.rows not in self.captured_on:  # this run captures the bucket's graph, on this thread
            self.captured_on[slot.rows] = threading.get_ident()
        self._session.run_with_iobinding(slot.binding, slot.options)
        out: np.ndarray = slot.output.numpy()[:n].astype(np.float32, copy=False)
        return out
