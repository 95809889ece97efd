"""``dfstream eval false-alarms``, ``eval streams`` and ``eval sensitivity``: the shipped graphs as the stream
runs them, on people never trained on."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import typer

from dfstream.cli_common import Device, ModelsDir, OrtDevice, guard
from dfstream.models.data.webrtc_codec import CALL_BITRATE, WEBRTC_CODECS, WebrtcCodec
from dfstream.stream.contract.exceptions import InputPathError
from dfstream.stream.contract.paths import BUNDLED_MODELS

Codec = StrEnum("Codec", {c: c for c in WEBRTC_CODECS})  # type: ignore[misc]


def eval_false_alarms_cmd(
    source: Annotated[
        Path, typer.Option(help="A genuine video (nobody in it manipulated) of a person never trained on.")
    ],
    models: ModelsDir = BUNDLED_MODELS,
    out: Annotated[Path, typer.Option(help="Folder for records.jsonl and false_alarms.json.")] = Path(
        "runs/false-alarms"
    ),
    device: OrtDevice = Device.cpu,
    through: Annotated[
        Codec | None, typer.Option(help="First send every frame through this WebRTC codec and back, as a browser "
                                   "call delivers it to 'dfstream serve'.")
    ] = None,
    bitrate: Annotated[
        int, typer.Option(min=50_000, max=20_000_000, help="With --through: the call's bitrate in bits per second "
                          "(aiortc starts at 500 kbps; browsers ramp from about 300 kbps).")
    ] = CALL_BITRATE,
) -> None:
    """Share of frames the stream flags as fake on genuine footage, per model and for the label."""

    def body() -> None:
        from dfstream.models.false_alarms import measure_false_alarms

        if not source.is_file():
            raise InputPathError(f"video not found: {source}")
        codec = None if through is None else cast(WebrtcCodec, through.value)
        r = measure_false_alarms(source, models, out, device.value, codec, bitrate)
        if through is not None:
            typer.echo(f"through {through.value} at {bitrate // 1000} kbps and back")
        clip = "n/a" if r.clip_model_rate is None else f"{r.clip_model_rate:.1%} of {r.clip_frames}"
        typer.echo(
            f"{r.frames_scored} frames scored | model A flags {r.frame_model_rate:.1%} | model B flags {clip} | "
            f"label 'fake' on {r.label_fake_rate:.1%} | mean fused score {r.mean_score:.3f}"
        )
        typer.echo(f"written: {out / 'false_alarms.json'}")

    guard(body)


def eval_streams_cmd(
    faces: Annotated[
        Path, typer.Option(help="A face bank of people never trained on (a data build's faces/val.npz or test.npz).")
    ],
    models: ModelsDir = BUNDLED_MODELS,
    out: Annotated[Path, typer.Option(help="Folder for the clips, their records and streams.json.")] = Path(
        "runs/streams"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the swap donors and the clips' noise.")] = 0,
    reuse_records: Annotated[
        bool, typer.Option(help="Replay the rules on the records a previous run left in --out (no clip is run).")
    ] = False,
    device: OrtDevice = Device.cpu,
) -> None:
    """Each face as an 8-s clip manipulated from 3.0 to 5.5 s (self-blend, swap) through the stream:
    how much of the stretch each label rule calls fake, and how much of the rest real."""

    def body() -> None:
        from dfstream.models.data.bank import read_bank
        from dfstream.models.eval_streams import evaluate_streams, rule_lines

        report = evaluate_streams(read_bank(faces), models, out, device.value, seed, reuse=reuse_records)
        for line in rule_lines(report):
            typer.echo(line)
        typer.echo(f"written: {out / 'streams.json'}")

    guard(body)


def eval_sensitivity_cmd(
    clips: Annotated[Path, typer.Option(help="A labelled clip split (a data build's clips/test or clips/val).")],
    models: ModelsDir = BUNDLED_MODELS,
    out: Annotated[Path, typer.Option(help="Folder for sensitivity.json.")] = Path("runs/sensitivity"),
    device: OrtDevice = Device.cpu,
) -> None:
    """Model B's clip scores with one whole-picture change (blur, sharpening, resolution, JPEG, colour)
    on every crop: what the model reads as evidence besides the pasting."""

    def body() -> None:
        from dfstream.models.eval_sensitivity import detail_line, evaluate_sensitivity, sensitivity_lines

        if not clips.is_dir():
            raise InputPathError(f"clip folder not found: {clips}")
        rows, detail = evaluate_sensitivity(models, clips, out, device.value)
        for line in [*sensitivity_lines(rows), detail_line(detail)]:
            typer.echo(line)
        typer.echo(f"written: {out / 'sensitivity.json'}")

    guard(body)
