"""Package discovery for the folder mapping in pyproject.toml (``dfstream.stream`` lives in ``stream/``...).

setuptools cannot discover subpackages under a mapped name, and a hand-kept list once left
``stream/outputs`` and ``stream/cluster`` out of the wheel; every folder with an ``__init__.py``
under a mapped root is a package here, so none can be forgotten.
"""

from pathlib import Path

from setuptools import setup

PACKAGE_ROOTS = {
    "dfstream": "dfstream",
    "dfstream.stream": "stream",
    "dfstream.export": "export",
    "dfstream.models": "models",
    "dfstream.benchmarks": "benchmarks",
}


def discovered_packages() -> list[str]:
    names: set[str] = set()
    for name, folder in PACKAGE_ROOTS.items():
        for init in Path(folder).rglob("__init__.py"):
            names.add(".".join((name, *init.parent.relative_to(folder).parts)))
    return sorted(names)


setup(package_dir=PACKAGE_ROOTS, packages=discovered_packages())
