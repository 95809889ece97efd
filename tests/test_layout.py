"""The README's Layout lists every module of the five package folders once, and nothing that is gone."""

from __future__ import annotations

import ast
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


PACKAGES = {"dfstream": "dfstream", "stream": "dfstream.stream", "export": "dfstream.export",
            "models": "dfstream.models", "benchmarks": "dfstream.benchmarks"}


def _import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports, at the top or inside a function alike."""
    modules: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
                modules[".".join([package, *parts])] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_no_module_imports_itself_back_through_others() -> None:
    """No import circle between the project's modules (the training modules once had one)."""
    graph = _import_graph()
    assert len(graph) > 100

    def reaches(start: str, goal: str) -> list[str] | None:
        seen, stack = {start}, [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph[node]):
                if nxt == goal:
                    return [*path, goal]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    circles = [c for c in (reaches(m, m) for m in sorted(graph)) if c]
    assert not circles, f"import circle: {' → '.join(circles[0])}"


def test_the_contract_sits_below_stream_and_export() -> None:
    """stream/contract imports only itself; stream/ never imports export/ (it reads the contract export writes
    to, not the writers)."""
    graph = _import_graph()
    contract = "dfstream.stream.contract"
    above = {m: sorted(t for t in targets if not t.startswith(contract) and t != "dfstream.stream.contract.exceptions")
             for m, targets in graph.items() if m.startswith(contract)}
    assert len(above) >= 4 and not any(above.values()), above
    upward = {m: sorted(t for t in targets if t.startswith("dfstream.export"))
              for m, targets in graph.items() if m.startswith("dfstream.stream")}
    assert not any(upward.values()), {m: t for m, t in upward.items() if t}


LAYERS = ("dfstream.stream.contract", "dfstream.stream", "dfstream.models", "dfstream.export", "dfstream.benchmarks",
          "dfstream.cli|dfstream.config_file|dfstream.doctor")
"""The folders from the bottom up; a module imports only from its own layer and those below it. Export sits
above models: its writers build the model definitions models/ keeps. The package root
(``dfstream/__init__.py``: the version) belongs to none."""


def _layer(module: str) -> int | None:
    for i, layer in reversed(list(enumerate(LAYERS))):
        if any(module == p or module.startswith(p + ".") or module.startswith(p + "_") for p in layer.split("|")):
            return i
    return None


def test_no_import_runs_back_up_between_folders() -> None:
    graph = _import_graph()
    upward = [f"{m} → {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
              if (a := _layer(m)) is not None and (b := _layer(t)) is not None and b > a]
    assert all(_layer(m) is not None for m in graph if m != "dfstream"), [m for m in graph if _layer(m) is None]
    assert not upward, upward
