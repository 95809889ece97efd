"""Where the bundled assets live, for editable and regular installs alike."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _package_dir(name: str) -> Path:
    """A package's folder without importing it (``dfstream.models`` maps onto ``models/``)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


BUNDLED_MODELS = _package_dir("dfstream.models") / "weights"
"""The ONNX models that ``dfstream run`` uses without ``--models``."""

SAMPLE_CLIP = _package_dir("dfstream") / "assets" / "sample_face.mp4"
"""The clip ``dfstream run`` plays without ``--source`` (made by ``dfstream data sample-clip``)."""
