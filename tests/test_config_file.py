"""The cameras file: the example validates, every error names file, line and field, flags override it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dfstream.config_file import EXAMPLE, ConfigError, load_config
from dfstream.stream.contract.paths import SAMPLE_CLIP

SECRET = "s3cr3t-pw-0123456789"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "dfstream.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


def test_the_example_checks_and_never_prints_a_password(tmp_path: Path) -> None:
    example = _cli("config", "example")
    assert example.returncode == 0 and example.stdout == EXAMPLE
    path = _write(tmp_path, example.stdout)
    result = _cli("config", "check", str(path), env={"FRONT_DOOR_PASSWORD": SECRET, "MQTT_PASSWORD": SECRET})
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "source front-door: rtsp://***@192.168.1.20:554/stream1" in result.stdout
    assert result.stdout.rstrip().endswith(f"{path}: ok")
    # a variable that fills more than a password is shown as written, never expanded
    whole = _write(tmp_path, "sources:\n  - name: a\n    url: ${CAMERA_URL}\n")
    result = _cli("config", "check", str(whole), env={"CAMERA_URL": f"rtsp://cam.example/{SECRET}"})
    assert result.returncode == 0 and SECRET not in result.stdout and "source a: ${CAMERA_URL}" in result.stdout


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    result = _cli("config", "check", str(path))
    assert result.returncode == 2 and "not a text file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_alias_bomb_is_one_line_at_once(tmp_path: Path) -> None:
    import time

    from dfstream.config_file import ConfigError, load_config

    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = _write(tmp_path, "\n".join(levels) + "\nsources: *a8\n")  # 9^9 strings once expanded
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"cameras.yaml:2: YAML aliases \(\*a0\) are not accepted"):
        load_config(path)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("sources:\n  - name: a\n    url: x.mp4\noutputs:\n  events:\n    dir: ev\n    bogus: 1\n",
         ":7: outputs.events.bogus: unknown key"),
        ("sources:\n  - name: a\n    url: x.mp4\n    stride: often\n",
         ":4: sources.0.stride: Input should be a valid integer"),
        ("sources:\n  - name: a\n    url: x.mp4\n  - name: b\n    url: y.mp4\n  - name: a\n    url: z.mp4\n",
         ":6: sources.2.name: duplicate source name 'a'"),
        ("sources:\n  - name: a\n    url: rtsp://u:${NOT_SET_ANYWHERE}@cam/1\n",
         ":3: sources.0.url: environment variable NOT_SET_ANYWHERE is not set"),
        ("sources: []\n", ":1: sources: Tuple should have at least 1 item"),
        ("models:\n  precision: bf16\nsources:\n  - name: a\n    url: x.mp4\n",
         ":2: models.precision: Input should be 'auto', 'fp32', 'fp16' or 'int8'"),
        ("sources:\n  - name: a\n   url: x\n", ":3: not valid YAML"),
        # a variable may fill a camera's or the broker's URL, not a place that sends or publishes it
        ("sources:\n  - name: a\n    url: x.mp4\noutputs:\n  webhooks:\n    - url: http://h/?t=${DFSTREAM_TOKEN}\n",
         ":6: outputs.webhooks.0.url: ${VAR} is read only into source URLs and outputs.mqtt.url"),
        ("a: &a [x, x]\nb: &b [*a, *a]\nsources: *b\n", ":2: YAML aliases (*a) are not accepted"),
        ("sources:\n  - name: a\n    url: x.mp4\n    url: y.mp4\n", ":4: not valid YAML (key 'url' is given twice"),
    ],
)
def test_each_error_names_the_file_line_and_field(tmp_path: Path, body: str, expected: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}{expected}"), str(info.value)
    result = _cli("config", "check", str(path))
    assert result.returncode == 2 and result.stderr.strip() == f"dfstream: error: {info.value}"


def test_run_reads_the_file_and_flags_override_it(stream_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "from-flag.jsonl"
    path = _write(tmp_path, f"""
sources:
  - name: calm
    url: {SAMPLE_CLIP}
    threshold: 0.95
  - name: touchy
    url: {SAMPLE_CLIP}
    threshold: 0.05
models:
  dir: {stream_models}
  device: cpu
outputs:
  jsonl: {tmp_path / "from-file.jsonl"}
""")
    result = _cli("run", "--config", str(path), "--out", str(out), "--duration", "6", "--no-window")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "from-file.jsonl").exists()  # --out won over outputs.jsonl
    records = [json.loads(x) for x in out.read_text().splitlines()]
    scores = [r for r in records if r["type"] == "score"]
    assert {r["source"] for r in scores} == {"calm", "touchy"}
    fake = {name: sum(r["label"] == "fake" for r in scores if r["source"] == name) for name in ("calm", "touchy")}
    assert fake["touchy"] > fake["calm"]  # each source's own threshold
    assert "source touchy: file 640x480" in result.stderr


def test_serve_reads_feeds_server_and_token_from_the_file(stream_models: Path, tmp_path: Path) -> None:
    import os
    import time
    import urllib.error
    import urllib.request

    from tests.rtsp import free_port

    port = free_port()
    path = _write(tmp_path, f"""
sources:
  - name: lobby
    url: {SAMPLE_CLIP}
models:
  dir: {stream_models}
  device: cpu
server:
  port: {port}
  token_env: DFSTREAM_TEST_PAGE_TOKEN
""")
    env = {**os.environ, "DFSTREAM_TEST_PAGE_TOKEN": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "dfstream.cli", "serve", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        body = None
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds?token={SECRET}", timeout=1) as res:
                    body = json.loads(res.read())
                    break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        assert body == {"feeds": ["lobby"]}
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/feeds", timeout=5)
            raise AssertionError("the token from token_env was not required")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert SECRET not in err and "?token=<the token>" in err


def test_the_example_names_every_precision_and_the_default() -> None:
    from dfstream.stream.ort_sessions import PRECISIONS
    from dfstream.stream.run_config import RunConfig

    line = next(x for x in EXAMPLE.splitlines() if x.strip().startswith("precision:"))
    value, _, comment = line.partition("#")
    assert value.split(":")[1].strip() == RunConfig.model_fields["precision"].default
    assert all(p in comment for p in PRECISIONS)
