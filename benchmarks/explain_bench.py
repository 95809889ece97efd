"""What ``--explain`` adds per face: fetching model A's attention output, the grid, the record, the heatmap.

Each pair is timed interleaved (``measure_interleaved``) on the sample clip's real face crops, so a
drifting machine biases neither side.
"""

from __future__ import annotations

from pathlib import Path

from dfstream.benchmarks.timing import Stats, measure_interleaved
from dfstream.stream.crops import crop_face, to_model_input
from dfstream.stream.explain import attention_of
from dfstream.stream.faces import first_face
from dfstream.stream.model_set import ModelSet
from dfstream.stream.overlay import annotate
from dfstream.stream.records import ScoreRecord, to_json


def bench_explain(
    models_dir: Path, clip: Path, device: str, seconds: float
) -> tuple[dict[str, Stats], tuple[int, int]]:
    """p50/p95/p99 per step without and with the attention map (one face, batch 1), and record sizes."""
    models = ModelSet.load(models_dir, device)
    if not models.explains:
        raise ValueError(f"{models.frame.path}: no attention output to measure")
    _, image, face = first_face(clip)
    bbox = face.bbox
    batch = to_model_input([crop_face(image, bbox, models.frame_input.size)], models.frame_input)
    _, maps = models.frame.p_fake_and(models.frame.metadata.attention_output or "", batch)
    attention = attention_of(bbox, maps[0])
    box = (round(bbox[0]), round(bbox[1]), round(bbox[2]), round(bbox[3]))
    plain = ScoreRecord(1.0, "clip", 0, 1, box, 0.2, 0.3, 0.25, "real", {"total": 50.0})
    explained = ScoreRecord(**{**plain.__dict__, "attention": attention})
    name = models.frame.metadata.attention_output or ""
    sizes = (len(to_json(plain)), len(to_json(explained)))
    stats = measure_interleaved(
        {
            "model A": lambda: models.frame.p_fake(batch),
            "model A + attention output": lambda: models.frame.p_fake_and(name, batch),
            "grid from the map": lambda: attention_of(bbox, maps[0]),
            "record as JSON": lambda: to_json(plain),
            "record as JSON + grid": lambda: to_json(explained),
            "annotate": lambda: annotate(image, [plain]),
            "annotate + heatmap": lambda: annotate(image, [explained]),
        },
        seconds,
    )
    return stats, sizes


def explain_markdown(stats: dict[str, Stats], record_bytes: tuple[int, int]) -> str:
    lines = ["| step (one face) | p50 ms | p95 ms | p99 ms | runs |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {k} | {s.p50_ms:.3f} | {s.p95_ms:.3f} | {s.p99_ms:.3f} | {s.runs} |" for k, s in stats.items()]
    lines.append(f"\nRecord size: {record_bytes[0]} bytes without the grid, {record_bytes[1]} with it.")
    return "\n".join(lines)
