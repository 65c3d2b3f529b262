"""Judge versions: where they live, which one judges, and atomic promotion.

A version is a directory `<judges dir>/<version>/` (default judges dir: `<db stem>.judges/` next to the DuckDB
file) holding the weights (LoRA adapter or full, safetensors), the tokenizer, `labeler_judge.json` (config),
`manifest.json` + `train_data.jsonl` (what it was trained on) and `metrics.json`, plus a row in `judges`.

Publishing is crash-safe in three steps: the directory is completed under a temporary name inside the judges
dir, renamed into place (atomic on one file system), then registered, and if promoted made the only active
version, in one transaction. A crash before the transaction leaves at most an unregistered directory; the
previous active judge is untouched throughout.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from labeler.errors import LabelerError
from labeler.store import Store
from schemas import JudgeVersion
from trainer.common import StartPoint

JUDGES_DIR_ENV = "LABELER_JUDGES_DIR"
CONFIG_FILE = "labeler_judge.json"
VERSION_RE = re.compile(r"^v(\d+)-")


@dataclass(frozen=True)
class JudgeSpec:
    """How to build a judge: backend, model dir, default mode and votes; `version` None = not a version."""

    backend: str
    model: str | None
    mode: str | None = None
    samples: int | None = None
    version: str | None = None


def judges_dir(db: Path, override: Path | None = None) -> Path:
    if override is None and os.environ.get(JUDGES_DIR_ENV):
        override = Path(os.environ[JUDGES_DIR_ENV])
    db = Path(db).resolve()
    return Path(override).resolve() if override else db.parent / f"{db.stem}.judges"


def next_version_name(store: Store, root: Path, method: str) -> str:
    """v001-<method>, v002-..., numbered past every registered version and every directory already in `root`."""
    names = [v.version for v in store.judge_versions()]
    if root.is_dir():
        names += [p.name.lstrip(".") for p in root.iterdir()]
    numbers = [int(m.group(1)) for n in names if (m := VERSION_RE.match(n))]
    return f"v{max(numbers, default=0) + 1:03d}-{method}"


def get(store: Store, name: str) -> JudgeVersion:
    record = store.judge_version(name)
    if record is None:
        known = ", ".join(v.version for v in store.judge_versions()) or "none yet (run `labeler retrain`)"
        raise LabelerError(f"no judge version {name!r} (known: {known})")
    return record


def check_version_dir(record: JudgeVersion) -> None:
    from labeler.judge.backends.models import check_model_dir

    path = Path(record.path)
    if not path.is_dir():
        raise LabelerError(f"judge version {record.version}: its directory {path} is missing")
    check_model_dir(path)


def start_point(store: Store, model: Path | None = None, version: str | None = None
                ) -> tuple[StartPoint, JudgeVersion | None]:
    """Where training starts: `model` if given, else `version` (a registered version, or the built-in `base` or
    `starter`), else the active version, else the default judge (the starter where this install ships one).

    A Bradley-Terry version cannot generate, so after one the generative methods start from its base model."""
    if model is not None:
        from labeler.judge.backends.models import check_model_dir, resolve_model

        path, _ = resolve_model(model)  # a local dir, or a Hub id in the local HF cache
        check_model_dir(path)
        return StartPoint.of(path), None
    named = builtin(version) if version else None
    record = None if named else (get(store, version) if version else store.active_judge())
    if record is None:
        default = named or builtin(None)
        if default.backend == "reward":  # the starter is a head on the frozen base: training starts from the base
            return StartPoint.of(StartPoint.of(Path(default.model)).base_model), None
        return StartPoint.of(Path(default.model) if default.model else _base_dir()), None
    check_version_dir(record)
    if record.backend == "reward":
        return StartPoint.of(Path(record.base_model)), record
    return StartPoint.of(Path(record.path), record.version), record


def probe_prior(store: Store, model: Path | None = None, version: str | None = None) -> Path | None:
    """The bt-probe judge dir a retrain from here continues (the heads it keeps): the named or active version, or
    the starter when it is the default judge; None when training starts from a model or a generative judge."""
    from labeler.judge.backends.probe import is_probe_dir

    if model is not None or version == "base":
        return None
    named = builtin(version) if version else None
    record = None if named else (get(store, version) if version else store.active_judge())
    path = Path(record.path) if record else Path((named or builtin(None)).model or ".")
    return path if (record is None or record.backend == "reward") and is_probe_dir(path) else None


def default_method(store: Store, model: Path | None = None, version: str | None = None) -> str:
    """`retrain` without --method continues the start judge's kind: bt-probe after a probe judge (the starter),
    STaR-DPO after a generative one."""
    return "bt-probe" if probe_prior(store, model, version) is not None else "star-dpo"


def builtin(name: str | None) -> JudgeSpec | None:
    """The judges every install has: `starter` (the shipped trained judge; `None` asks for the default judge,
    which is the starter where this install ships one) and `base` (the untrained default model)."""
    from labeler.judge.backends import starter

    if name in (starter.STARTER, None) and (name or starter.available()):
        return JudgeSpec(starter.backend(), str(starter.starter_dir()), "direct", 1, starter.STARTER)
    if name in (starter.BASE, None):
        return JudgeSpec("transformers", None)
    return None


def _base_dir() -> Path:
    from labeler.judge.backends.models import default_model_dir

    return default_model_dir()


def spec(store: Store, version: str | None = None) -> JudgeSpec | None:
    """The judge `annotate` (and eval) should use: `version` if given, else the active one, else None."""
    record = get(store, version) if version else store.active_judge()
    if record is None:
        return None
    check_version_dir(record)
    return JudgeSpec(record.backend, record.path, record.mode, record.samples, record.version)


def publish(tmp_dir: Path, root: Path) -> Path:
    """Rename a completed version dir into `root` (same file system, so atomic); returns its final path."""
    target = root / tmp_dir.name
    if target.exists():
        raise LabelerError(f"{target} already exists; refusing to overwrite a judge version")
    os.replace(tmp_dir, target)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename itself survives a power cut
    finally:
        os.close(fd)
    return target


def register(store: Store, record: JudgeVersion) -> None:
    """One transaction: insert the version, and if `record.active`, make it the only active one."""
    store.register_judge(record)


def use(store: Store, name: str) -> JudgeVersion | None:
    """Make `name` the active judge (`default` = no version: the default model judges again)."""
    if name in ("default", "none", "starter"):  # no active version: the default judge (the starter) judges
        store.activate_judge(None)
        return None
    record = get(store, name)
    check_version_dir(record)
    store.activate_judge(record.version)
    return store.judge_version(record.version)


def list_versions(store: Store) -> list[JudgeVersion]:
    """The registered versions, after the shipped starter judge (active while no registered version is)."""
    from labeler.judge.backends import starter

    versions = store.judge_versions()
    if not starter.available():
        return versions
    record = JudgeVersion(**starter.manifest()["judge"])
    return [record.model_copy(update={"active": not any(v.active for v in versions)}), *versions]
