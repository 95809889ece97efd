"""The README's Layout lists every module of the five package folders once, and nothing that is gone."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("dfstream", "stream", "export", "models", "benchmarks")


def _listed() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Layout\n"):]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    return re.findall(r"^(\S+\.py)\s", section, flags=re.MULTILINE)


def _modules() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
            if p.name != "__init__.py" and "__pycache__" not in p.parts}


def test_every_module_is_listed_once() -> None:
    listed = _listed()
    twice = sorted(name for name, n in Counter(listed).items() if n > 1)
    assert not twice, f"listed more than once: {twice}"
    modules = _modules()
    assert not modules - set(listed), f"modules missing from the README's Layout: {sorted(modules - set(listed))}"
    gone = sorted(set(listed) - modules)
    assert not gone, f"the README's Layout lists modules that do not exist: {gone}"
