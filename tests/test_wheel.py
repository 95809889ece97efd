"""The project as users install it: built into an sdist and a wheel, installed non-editable in a fresh venv.

``make`` installs in editable mode, which hides a module missing from the wheel; this test is
what catches it (a hand-kept package list once dropped ``stream/outputs`` and ``stream/cluster``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"dfstream": "dfstream", "stream": "dfstream/stream", "export": "dfstream/export",
          "models": "dfstream/models", "benchmarks": "dfstream/benchmarks"}


def _source_modules() -> set[str]:
    """Every .py file of the five mapped folders, as the path it must have inside the wheel."""
    found: set[str] = set()
    for folder, inside in MAPPED.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(f"{inside}/{path.relative_to(ROOT / folder).as_posix()}")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", str(out),
                    str(ROOT)], check=True, capture_output=True, text=True, timeout=300)
    return next(out.glob("*.whl")), next(out.glob("*.tar.gz"))


@pytest.mark.slow
def test_wheel_holds_every_source_module_and_the_bundled_assets(built: tuple[Path, Path]) -> None:
    wheel, sdist = built
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_modules() - names)
    assert not missing, f"modules missing from the wheel: {missing[:10]}"
    for asset in ("dfstream/assets/sample_face.mp4", "dfstream/stream/web/index.html",
                  "dfstream/models/weights/frame_cnn.onnx", "dfstream/models/weights/clip_encoder.onnx"):
        assert asset in names, asset
    # The sdist carries what a wheel is built from (the wheel above was built from it).
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"setup.py", "pyproject.toml", "stream/outputs/mqtt.py", "stream/cluster/worker.py"} <= members


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_and_doctor(built: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, _ = built
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py, dfstream = venv / "bin" / "python", venv / "bin" / "dfstream"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", f"{wheel}[cpu]"], check=True, timeout=900)
    # Nothing from the checkout may leak in: run from an empty folder, so only site-packages is importable.
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import dfstream.stream; print(dfstream.stream.__file__)"],
                           cwd=work, check=True, capture_output=True, text=True).stdout
    assert "site-packages" in where, where
    runtime_packages = ["dfstream.stream.outputs", "dfstream.stream.cluster", "dfstream.stream.sources",
                        "dfstream.stream.contract.metadata", "dfstream.cli"]
    subprocess.run([str(py), "-c", "import importlib, sys; [importlib.import_module(m) for m in sys.argv[1:]]",
                    *runtime_packages], cwd=work, check=True, timeout=120)
    ran = subprocess.run([str(dfstream), "run", "--out", "demo.jsonl", "--summary-json", "summary.json"],
                         cwd=work, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    lines = [json.loads(line) for line in (work / "demo.jsonl").read_text().splitlines()]
    scores = [r for r in lines if r["type"] == "score"]
    assert scores and any(r["score_clip"] is not None for r in scores)
    summary = json.loads((work / "summary.json").read_text())
    assert summary["frames"] > 0
    doctor = subprocess.run([str(dfstream), "doctor"], cwd=work, capture_output=True, text=True, timeout=300)
    assert doctor.returncode == 0, doctor.stdout[-2000:] + doctor.stderr[-2000:]
