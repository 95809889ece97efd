"""What every benchmark run records about where it ran."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import onnxruntime as ort

from dfstream import __version__
from dfstream.stream.contract.file_names import sha256_of


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name() -> str | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else None


def machine_info() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "ort_providers": ort.get_available_providers(),
        "dfstream": __version__,
    }


def file_hashes(paths: list[Path]) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in paths if p.is_file()}


def cpu_times() -> tuple[int, int]:
    """(all, steal) jiffies from /proc/stat; (0, 0) where it does not exist."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    return sum(fields), fields[7] if len(fields) > 7 else 0


def steal_pct(start: tuple[int, int], end: tuple[int, int]) -> float | None:
    """Share of CPU time the hypervisor gave to others between two ``cpu_times`` (noisy neighbours)."""
    total = end[0] - start[0]
    return round(100.0 * (end[1] - start[1]) / total, 1) if total > 0 else None
