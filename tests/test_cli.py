"""Help for every command; bad input gives one line on stderr and exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from enum import Enum
from pathlib import Path

import click
import pytest
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.testing import CliRunner

from dfstream.cli import app
from dfstream.cli_common import Device, Precision, option_of
from dfstream.models.configs import (
    BuildConfig,
    EvalBundledConfig,
    EvalClipConfig,
    EvalCnnConfig,
    EvalCompareConfig,
    EvalKindsConfig,
    RecalibrateConfig,
    TrainClipConfig,
    TrainCnnConfig,
    TrainOnTheFlyConfig,
)
from dfstream.stream.ort_sessions import DEVICES, PRECISIONS
from dfstream.stream.run_config import RunConfig, ServeConfig

runner = CliRunner()

COMMANDS = {
    (): ["run", "bench", "export", "inspect", "train", "eval", "doctor", "--debug"],
    ("doctor",): ["--models", "--out", "--device"],
    ("bench", "models"): ["--models", "--out", "--device", "--batches", "--seconds", "--native", "--quick"],
    ("bench", "pipeline"): ["--models", "--clip", "--out", "--streams", "--modes", "--duration", "--stride",
                            "--precision", "--quick"],
    ("bench", "explain"): ["--models", "--clip", "--out", "--device", "--seconds"],
    ("bench", "ort"): ["--models", "--clip", "--out", "--seconds", "--pipeline", "--settings"],
    ("bench", "soak"): ["--minutes", "--models", "--clip", "--out", "--interval"],
    ("run",): ["--source", "--models", "--device", "--out", "--video", "--max-faces", "--stride", "--realtime",
               "--duration", "--rtsp-transport", "--retry", "--window", "--summary-json", "--loop", "--explain"],
    ("serve",): ["--source", "--models", "--token", "--max-peers", "--ice-server", "--explain"],
    ("export",): ["--out-dir", "--threshold", "--threshold-from", "--fp16", "--positive-class", "--img-size",
                  "--input-scale"],
    ("inspect",): ["--device"],
    ("train", "cnn"): ["--data", "--out", "--img-size", "--batch-size", "--epochs", "--lr", "--seed"],
    ("train", "clip"): ["--data", "--out", "--img-size", "--val-fraction", "--imagenet-weights", "--workers"],
    ("eval", "cnn"): ["--model", "--data", "--out", "--gradcam-samples", "--input-scale"],
    ("eval", "clip"): ["--model", "--data", "--out", "--split", "--threshold"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_describes_every_option(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in COMMANDS[command]:
        assert option in result.output


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dfstream.cli", *args], capture_output=True, text=True, timeout=300)


def _one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("dfstream: error:")]
    assert len(lines) == 1 and pattern in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_option_choices_are_the_runtimes() -> None:
    """Typer needs enums; they must offer exactly what the runtime and the config files accept."""
    assert tuple(Precision) == PRECISIONS
    assert tuple(Device) == DEVICES


# The commands whose options a config model validates, and the options named apart from their field.
CONFIG_OF_COMMAND: dict[tuple[str, ...], type[BaseModel] | tuple[type[BaseModel], ...]] = {
    ("train", "cnn"): TrainCnnConfig,
    ("train", "clip"): (TrainClipConfig, TrainOnTheFlyConfig),  # one config per recipe
    ("eval", "cnn"): EvalCnnConfig,
    ("eval", "clip"): EvalClipConfig,
    ("eval", "kinds"): EvalKindsConfig,
    ("eval", "bundled"): EvalBundledConfig,
    ("eval", "compare"): EvalCompareConfig,
    ("calibrate",): RecalibrateConfig,
    ("data", "build"): BuildConfig,
    ("run",): RunConfig,
    ("serve",): ServeConfig,
}
FIELD_OF_OPTION = {
    "data": "data_dir", "out": "out_dir", "val_data": "val_dir",
    "genuine": "genuine_per_face", "sbi": "sbi_per_face", "swap": "swap_per_face",
    "duration": "duration_s", "ray_timeout": "ray_timeout_s",
}


def _configs(path: tuple[str, ...]) -> tuple[type[BaseModel], ...]:
    configs = CONFIG_OF_COMMAND[path]
    return configs if isinstance(configs, tuple) else (configs,)


def _options_with_fields(path: tuple[str, ...]) -> list[tuple[click.Parameter, FieldInfo]]:
    """The command's parameters that set a field of its config, each beside that field."""
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    fields = {name: field for config in _configs(path) for name, field in config.model_fields.items()}
    pairs = []
    for param in command.params:
        name = str(param.name)
        field = fields.get(name) or fields.get(FIELD_OF_OPTION.get(name, name))
        if field is not None:
            pairs.append((param, field))
    assert len(pairs) >= 2, f"dfstream {' '.join(path)}: no option matched a field of its config"
    return pairs


@pytest.mark.parametrize("path", list(CONFIG_OF_COMMAND), ids=" ".join)
def test_option_defaults_are_their_configs(path: tuple[str, ...]) -> None:
    """An option's default is its config field's: the config is where a default is declared."""
    checked = 0
    for param, field in _options_with_fields(path):
        if field.is_required():
            continue
        shown = param.default.value if isinstance(param.default, Enum) else param.default
        assert shown == field.default or (shown is None and field.default == ()), (param.name, shown, field.default)
        checked += 1
    assert checked >= 2, f"dfstream {' '.join(path)}: no option with a default matched a field of its config"


HELP_FROM_CONFIG = [path for path in CONFIG_OF_COMMAND if path not in {("run",), ("serve",)}]
"""Commands whose options take their help from their config's field descriptions (run and serve share one
config and word some options for their own source: a stream or a peer)."""


@pytest.mark.parametrize("path", HELP_FROM_CONFIG, ids=" ".join)
def test_option_help_is_its_config_field_description(path: tuple[str, ...]) -> None:
    """An option's --help is its config field's description, so the two cannot drift apart."""
    for param, field in _options_with_fields(path):
        assert field.description, f"{_configs(path)[-1].__name__}: {param.name} has no description"
        assert param.help == field.description, (param.name, param.help, field.description)  # type: ignore[attr-defined]


def test_option_of_refuses_a_field_without_description() -> None:
    class Bare(BaseModel):
        n: int = 3

    with pytest.raises(KeyError, match=r"Bare\.n has no description"):
        option_of(Bare, "n")


def test_a_data_build_without_fakes_fails_before_fetching(tmp_path: Path) -> None:
    result = _cli("data", "build", "--sbi", "0", "--swap", "0", "--out", str(tmp_path / "ds"),
                  "--cache", str(tmp_path / "packages"))
    _one_line_error(result, "dfstream: error: need at least one manipulated clip per face")
    assert not (tmp_path / "ds").exists() and not (tmp_path / "packages").exists()


def test_missing_model_path(tmp_path: Path) -> None:
    _one_line_error(_cli("export", str(tmp_path / "nope.keras")), "model file not found")


def test_unknown_model_suffix(tmp_path: Path) -> None:
    (tmp_path / "m.h5").write_bytes(b"x")
    _one_line_error(
        _cli("export", str(tmp_path / "m.h5")), "unknown model type '.h5'; expected one of .keras, .pth, .pt"
    )


def test_keras_file_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_text("hello")
    _one_line_error(_cli("export", str(tmp_path / "m.keras")), "not a Keras .keras archive")


def test_pth_with_wrong_keys(tmp_path: Path) -> None:
    import torch

    torch.save({"cnn.features.0.0.weight": torch.zeros(32, 3, 3, 3), "head.weight": torch.zeros(1)}, tmp_path / "m.pth")
    _one_line_error(_cli("export", str(tmp_path / "m.pth")), "unexpected (head.weight)")


def test_onnx_without_metadata(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "plain.onnx"))
    _one_line_error(_cli("inspect", str(tmp_path / "plain.onnx")), "no dfstream metadata")


def test_one_class_dataset(tmp_path: Path, frame_dataset: Path) -> None:
    import shutil

    shutil.copytree(frame_dataset / "train" / "fake", tmp_path / "train" / "fake")
    result = _cli("train", "cnn", "--data", str(tmp_path), "--out", str(tmp_path / "out"))
    _one_line_error(result, "only 'fake' samples (8); both real and fake are needed")


def test_invalid_option_value(tmp_path: Path) -> None:
    _one_line_error(
        _cli("train", "cnn", "--data", str(tmp_path), "--out", str(tmp_path), "--img-size", "8"), "option 'img_size'"
    )


# ---------------------------------------------------------------- dfstream run


def test_run_with_a_missing_source_fails_before_any_work(tmp_path: Path) -> None:
    result = _cli("run", "--source", str(tmp_path / "cam.mp4"), "--out", str(tmp_path / "s.jsonl"))
    _one_line_error(result, f"source {tmp_path / 'cam.mp4'}: file not found")
    assert not (tmp_path / "s.jsonl").exists()


def test_run_with_an_unknown_source_kind(tmp_path: Path) -> None:
    _one_line_error(_cli("run", "--source", "http://example/x"), "unknown kind; expected a video file path")


def test_run_refuses_an_unwritable_output_before_loading_models(tmp_path: Path) -> None:
    result = _cli("run", "--models", str(tmp_path / "no-models"), "--out", str(tmp_path / "no" / "s.jsonl"))
    _one_line_error(result, f"output {tmp_path / 'no' / 's.jsonl'}: folder {tmp_path / 'no'} does not exist")


def test_run_names_missing_model_files(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    result = _cli("run", "--models", str(tmp_path / "m"))
    _one_line_error(result, "missing frame_cnn.onnx, clip_encoder.onnx, clip_head.onnx")


def test_run_rejects_a_bad_retry_value() -> None:
    result = _cli("run", "--retry", "sometimes")
    assert result.returncode == 2 and "neither a positive count nor 'forever'" in result.stderr


def test_run_on_the_sample_prints_the_summary_and_writes_outputs(stream_models: Path, tmp_path: Path) -> None:
    result = _cli("run", "--models", str(stream_models), "--out", str(tmp_path / "s.jsonl"), "--video",
                  str(tmp_path / "s.mp4"), "--summary-json", str(tmp_path / "summary.json"), "--stride", "2")
    assert result.returncode == 0, result.stderr
    assert "dfstream summary: 240 frames" in result.stdout and "sample_face.mp4#1" in result.stdout
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert sum('"type":"score"' in line for line in lines) == 240
    assert (tmp_path / "s.mp4").stat().st_size > 10_000
    assert '"frames": 240' in (tmp_path / "summary.json").read_text()


def test_help_texts_keep_their_square_brackets() -> None:
    """typer's rich formatting takes '[ray]' for markup and drops it unless it is escaped."""
    result = runner.invoke(app, ["run", "--help"], terminal_width=200)
    import re

    text = re.sub(r"[\s│]+", " ", result.output)  # the help's box borders and wrapping
    assert result.exit_code == 0 and "pip install 'dfstream[ray]'" in text


@pytest.mark.parametrize(("extra", "line"), [
    (["--steps", "5"], "--steps: an option of on-the-fly training: give --faces"),
    (["--faces", "bank.npz", "--val-data", ".", "--batch-size", "8", "--pretrain-epochs", "2"],
     "--batch-size, --pretrain-epochs: options of training on fixed clips, not with --faces"),
    (["--faces", "bank.npz"], "on-the-fly training needs --val-data (the data build's clips/val)"),
], ids=["on-the-fly option without faces", "fixed-clip options with faces", "faces without val-data"])
def test_train_clip_refuses_the_other_recipes_options_in_one_line(
    extra: list[str], line: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["train", "clip", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *extra])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"dfstream: error: {line}"]
