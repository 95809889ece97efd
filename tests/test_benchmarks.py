"""Benchmark reports on tiny runs: structure, every promised row and column, plots written."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from dfstream.benchmarks.report import PIPELINE_STAGES
from dfstream.benchmarks.suite import run_explain, run_models, run_pipeline, run_soak
from dfstream.stream.contract.paths import SAMPLE_CLIP

PNG = b"\x89PNG\r\n\x1a\n"


def test_models_report_has_every_row_ratio_and_machine_fact(stream_models: Path, tmp_path: Path) -> None:
    written = run_models(stream_models, tmp_path, "cpu", [1, 2], 0.05, native=True)
    data = json.loads((tmp_path / "models.json").read_text())
    assert {"cpu", "cores", "gpu", "onnxruntime", "ort_providers"} <= set(data["machine"])
    assert set(data["model_sha256"]) >= {"frame_cnn.onnx", "clip_encoder.onnx", "clip_head.onnx"}
    assert data["cpu_steal_pct"] is None or 0 <= data["cpu_steal_pct"] <= 100
    rows = {(r["model"], r["runtime"], r["batch"]): r for r in data["rows"]}
    for role in ("frame_cnn", "clip_encoder", "clip_head"):
        for batch in (1, 2):
            assert (role, "onnxruntime", batch) in rows
    for key in [("frame_cnn", "tensorflow", 1), ("clip_encoder", "torch", 2), ("clip_head", "torch", 1),
                ("clip_incremental", "onnxruntime", 1), ("clip_naive", "onnxruntime", 1)]:
        assert key in rows, key
    for r in rows.values():
        assert r["runs"] >= 10 and 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["items_per_s"] > 0
        assert r["provider"] == "cpu" and r["precision"] == "fp32"
    assert data["naive_over_incremental"] > 2.0, "16 encoder passes must cost more than one"
    assert set(data["ratios"]) >= {"frame_cnn_b1_ort_fp32_over_tensorflow", "clip_encoder_b2_ort_fp32_over_torch"}
    assert "| frame_cnn | onnxruntime | cpu | fp32 | 1 |" in written.markdown


def test_pipeline_report_has_stages_percentiles_and_plots(stream_models: Path, tmp_path: Path) -> None:
    written = run_pipeline(stream_models, SAMPLE_CLIP, tmp_path, "cpu", [1, 2], ["paced", "fast"], 1.5)
    data = json.loads((tmp_path / "pipeline.json").read_text())
    assert [(r["mode"], r["streams"]) for r in data["rows"]] == [("paced", 1), ("paced", 2), ("fast", 1), ("fast", 2)]
    for r in data["rows"]:
        assert r["frames"] > 0 and r["fps"] > 0
        assert set(r["stages"]) == set(PIPELINE_STAGES)
        c = r["capture_to_score"]
        assert 0 < c["p50"] <= c["p95"] <= c["p99"]
        assert len(r["samples"]["total"]) == r["frames"] or r["streams"] > 1
    assert next(r for r in data["rows"] if r["mode"] == "fast")["dropped"] == 0
    for name in ("latency_cdf.png", "stages_stacked.png", "p99_vs_streams.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert "| paced | 2 |" in written.markdown


def test_soak_reports_rss_and_p99_per_interval(stream_models: Path, tmp_path: Path) -> None:
    run_soak(stream_models, SAMPLE_CLIP, tmp_path, "cpu", minutes=4.5 / 60, interval_s=1.0)
    data = json.loads((tmp_path / "soak.json").read_text())
    assert len(data["intervals"]) >= 3
    assert all(i["rss_mb"] > 50 and i["frames"] > 0 for i in data["intervals"])
    assert math.isfinite(data["rss_growth_pct"]) and math.isfinite(data["p99_drift_pct"])


def test_bench_command_prints_the_table(stream_models: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dfstream.cli", "bench", "models", "--models", str(stream_models), "--batches", "1",
         "--seconds", "0.05", "--no-native", "--out", str(tmp_path), "--device", "cpu"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "| model | runtime | provider | precision | batch | p50 ms |" in out.stdout
    assert "Naive clip scoring" in out.stdout and (tmp_path / "models.json").is_file()


def test_bad_batches_are_refused(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "dfstream.cli", "bench", "models", "--batches", "1,x"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "comma-separated integers" in out.stderr


def test_explain_bench_times_each_step_with_and_without_the_map(stream_models: Path, tmp_path: Path) -> None:
    written = run_explain(stream_models, SAMPLE_CLIP, tmp_path, "cpu", seconds=0.5)
    data = json.loads((tmp_path / "explain.json").read_text())
    steps = data["steps"]
    assert set(steps) >= {"model A", "model A + attention output", "annotate", "annotate + heatmap"}
    assert all(s["runs"] >= 10 and s["p50_ms"] > 0 for s in steps.values())
    small, large = data["record_bytes"]
    assert large > small + 14 * 14 * 3  # the grid's numbers are in the record
    assert "| annotate + heatmap |" in written.markdown


def test_ort_bench_compares_settings_and_the_runtime_applies_them(stream_models: Path, tmp_path: Path) -> None:
    from dfstream.benchmarks.suite import run_ort
    from dfstream.stream.ort_sessions import OrtSettings, load_model

    written = run_ort(stream_models, SAMPLE_CLIP, tmp_path, seconds=0.2, pipeline_s=2.0,
                      variants=["default", "1 thread"])
    rows = json.loads((tmp_path / "ort.json").read_text())["rows"]
    assert [r["setting"] for r in rows] == ["default", "1 thread"] and rows[1]["intra_threads"] == 1
    assert all(r["frame_cnn_p50_ms"] > 0 and r["pipeline_fps"] > 0 for r in rows)
    assert "| 1 thread |" in written.markdown
    session = load_model(stream_models / "frame_cnn.onnx", "frame_cnn", "cpu",
                         settings=OrtSettings(intra_threads=1, optimization="basic")).session
    options = session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.graph_optimization_level.name == "ORT_ENABLE_BASIC"


def test_ratios_compare_each_provider_with_the_native_framework_on_the_same_provider() -> None:
    from dfstream.benchmarks.models_bench import ModelRow, _row, ratios
    from dfstream.benchmarks.timing import Stats

    def row(runtime: str, provider: str, precision: str, ms: float) -> ModelRow:
        return _row("clip_encoder", runtime, provider, precision, 1, Stats.of([ms] * 10))

    rows = [row("onnxruntime", "cpu", "fp32", 5.0), row("torch", "cpu", "fp32", 20.0),
            row("onnxruntime", "cuda", "fp16", 0.5), row("torch", "cuda", "fp32", 2.0)]
    assert ratios(rows) == {"clip_encoder_b1_ort_fp32_over_torch": 0.25,
                            "clip_encoder_b1_ort_fp16_over_torch_cuda": 0.25}


def test_cpu_budget_puts_a_threads_cpu_time_on_its_name() -> None:
    """A named thread that burns 0.3 s of CPU is found under its name (pool workers under their prefix)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from dfstream.benchmarks.cpu_budget import CpuBudget

    done = threading.Event()
    burnt: list[float] = []

    def burn() -> None:
        start = time.thread_time()
        while time.thread_time() - start < 0.3:
            pass
        burnt.append(time.thread_time() - start)
        done.wait()

    budget = CpuBudget(interval_s=0.05)
    worker = threading.Thread(target=burn, name="burner")
    with ThreadPoolExecutor(2, thread_name_prefix="burner-pool") as pool:
        with budget:  # both threads are still alive at its last sample, so none of their time is lost
            worker.start()
            pool.submit(burn)
            while len(burnt) < 2:
                time.sleep(0.01)
        done.set()
    worker.join()
    assert budget.seconds["burner"] >= 0.29
    assert budget.seconds["burner-pool"] >= 0.29
    assert budget.total_cores > 0 and budget.cores["burner"] > 0
