"""Where a run's CPU time goes, per thread: the per-core budget of ``bench pipeline``.

Wall-clock stage latencies say how long a frame waits; they do not say which work fills the cores.
A sampler reads every thread's user + system time from ``/proc/self/task`` twice a second, with the
Python name of each thread that has one (the faces pool, model A's lane, sources, sinks) and the
kernel's name for the native ones (ONNX Runtime's and MediaPipe's own workers). The process total
comes from ``os.times`` and is exact; per thread, up to one sampling interval at a thread's end is
lost, which the ``unattributed`` share shows.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASKS = Path("/proc/self/task")
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
POOL_NAME = re.compile(r"^(.*?)(?:[-_]\d+)+$")
"""``ThreadPoolExecutor-0_1`` and ``dfstream-faces-pool_2`` are one group each: their workers share a job."""


def thread_times() -> dict[int, tuple[str, float]]:
    """Native thread id → (kernel name, CPU seconds so far) for every thread of this process."""
    out: dict[int, tuple[str, float]] = {}
    for task in TASKS.iterdir() if TASKS.is_dir() else ():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended between listing and reading
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[int(task.name)] = (comm, (int(fields[11]) + int(fields[12])) * TICK_S)
    return out


NATIVE_NUMBER = re.compile(r"[/_-]?\d+$")
"""MediaPipe names its workers ``mediapipe/<n>``: one group."""


def group_of(python_name: str | None, comm: str) -> str:
    if python_name is None:
        return f"native:{NATIVE_NUMBER.sub('', comm)}"
    if python_name.startswith("source:"):  # one reader thread per camera
        return "sources"
    match = POOL_NAME.match(python_name)
    return match.group(1) if match else python_name


@dataclass
class CpuBudget:
    """Use as a context manager around a run; ``cores`` is then CPU seconds per second per thread group."""

    interval_s: float = 0.5
    cores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """CPU seconds per thread group over the run."""
    total_cores: float = 0.0
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, tuple[str, float]] = field(default_factory=dict)
    _names: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0
    _cpu0: float = 0.0

    def _sample(self) -> None:
        for t in threading.enumerate():
            if t.native_id is not None and t.name != "cpu-budget":
                self._names[t.native_id] = t.name
        for tid, (comm, cpu) in thread_times().items():
            self._first.setdefault(tid, cpu if self._thread is None else 0.0)
            self._last[tid] = (comm, cpu)

    def _main(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> CpuBudget:
        self._sample()  # threads alive now count from here; later ones from their start
        times = os.times()
        self._t0, self._cpu0 = time.perf_counter(), times.user + times.system
        self._thread = threading.Thread(target=self._main, name="cpu-budget", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        own = self._thread.native_id if self._thread is not None else None
        self._sample()
        wall = max(time.perf_counter() - self._t0, 1e-9)
        times = os.times()
        self.total_cores = (times.user + times.system - self._cpu0) / wall
        groups: dict[str, float] = defaultdict(float)
        for tid, (comm, cpu) in self._last.items():
            if tid != own:
                groups[group_of(self._names.get(tid), comm)] += cpu - self._first.get(tid, 0.0)
        groups["unattributed"] = max(0.0, self.total_cores * wall - sum(groups.values()))
        ordered = sorted(groups.items(), key=lambda kv: -kv[1])
        self.seconds = {k: round(v, 3) for k, v in ordered}
        self.cores = {k: round(v / wall, 3) for k, v in ordered if v / wall >= 0.005}

    def to_dict(self) -> dict[str, Any]:
        return {"total_cores": round(self.total_cores, 3), "cores": self.cores}
