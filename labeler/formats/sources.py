"""Where pairs come from: a file (JSONL, a JSON array, Parquet, CSV), a folder written by `datasets`'
`save_to_disk`, or a Hugging Face Hub dataset id that is already in the local cache (labeler never downloads).
Each becomes one or more parts to stage: a dataset with splits gives one part per split; `NAME:SPLIT` picks one.
"""

import errno
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from labeler.errors import LabelerError

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv", ".tsv"}
FILE_SUFFIXES = JSONL_SUFFIXES | PARQUET_SUFFIXES | CSV_SUFFIXES
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
EXPECTED = ".jsonl, .ndjson, .json, .parquet, .csv or .tsv"


@dataclass
class Part:
    """One thing to stage: a file, or one split of a dataset as an Arrow table."""

    name: str  # as the user named it, for reports and errors
    kind: str  # jsonl | json-array | parquet | csv | arrow
    path: Path | None = None
    table: object = None  # pyarrow.Table, for kind "arrow"
    label: str = ""  # the quarantine's and the pairs' `file`: an absolute path, or `hf:NAME:SPLIT`

    def __post_init__(self):
        self.label = self.label or self.name

    @property
    def empty(self) -> bool:
        return self.table.num_rows == 0 if self.kind == "arrow" else self.path.stat().st_size == 0


def file_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in JSONL_SUFFIXES:
        return "json-array" if suffix == ".json" and _first_char(path) == "[" else "jsonl"
    raise LabelerError(f"{path}: unknown file type {suffix!r} (expected {EXPECTED}, a `datasets` folder or a "
                       "Hub dataset id)")


def _first_char(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1].decode("latin-1")


def is_dataset_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists())


def _split_suffix(arg: str) -> tuple[str, str | None]:
    base, sep, split = arg.rpartition(":")
    return (base, split) if sep and base and split and "/" not in split else (arg, None)


def check_regular(path: Path) -> None:
    """A pipe, socket or device, or a symbolic link loop, is one LabelerError naming it (a missing path is not:
    the caller says what it expected there)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        reason = "symbolic link loop" if exc.errno == errno.ELOOP else f"cannot read: {exc.strerror}"
        raise LabelerError(f"{path}: {reason}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise LabelerError(f"{path}: not a regular file (a pipe, socket or device); give a file or a folder")


def open_parts(arg: Path) -> list[Part]:
    """The parts of one input argument; a missing or unreadable one is one LabelerError naming it."""
    check_regular(arg)
    if arg.is_file():
        return [Part(str(arg), file_kind(arg), arg, label=str(arg.resolve()))]
    base, split = (str(arg), None) if arg.exists() else _split_suffix(str(arg))
    if is_dataset_dir(Path(base)):
        return _dataset_parts(_load_from_disk(Path(base)), str(Path(base).resolve()), split)
    if arg.is_dir():
        raise LabelerError(f"{arg}: is a directory, expected a file ({EXPECTED}) or a folder written by "
                           "`datasets` save_to_disk")
    if Path(base).suffix.lower() in FILE_SUFFIXES or not HUB_ID.fullmatch(base):
        raise LabelerError(f"{arg}: no such file")
    return _dataset_parts(_load_cached(base, str(arg)), f"hf:{base}", split)


def _dataset_parts(loaded, name: str, split: str | None) -> list[Part]:
    """A Dataset is one part; a DatasetDict one part per split (or the one `split` names)."""
    if not hasattr(loaded, "keys"):
        if split is not None:
            raise LabelerError(f"{name}: has no splits (drop `:{split}`)")
        return [Part(name, "arrow", table=_table(loaded))]
    if split is not None and split not in loaded:
        raise LabelerError(f"{name}: no split {split!r} (splits: {', '.join(loaded)})")
    names = [split] if split is not None else list(loaded)
    return [Part(f"{name}:{s}", "arrow", table=_table(loaded[s])) for s in names]


def _table(dataset):
    if getattr(dataset, "_indices", None) is not None:  # a select()/shuffle() view: materialise its rows in order
        dataset = dataset.flatten_indices()
    return dataset.data.table


def _load_from_disk(path: Path):
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # a damaged folder: datasets raises many kinds
        raise LabelerError(f"{path}: cannot read the `datasets` folder: {_first_line(exc)}") from None


def _load_cached(name: str, arg: str):
    """`datasets.load_dataset(name)` offline, from the local Hugging Face cache only: never a download, never a wait."""
    with _offline() as datasets:
        try:
            return datasets.load_dataset(name)
        except Exception as exc:
            raise LabelerError(
                f"{arg}: no such file, and no dataset {name!r} in the local Hugging Face cache "
                f"({datasets.config.HF_DATASETS_CACHE}); labeler reads the Hub offline only, so download it first "
                f"(`datasets.load_dataset({name!r})` with network) ({_first_line(exc)})") from None


@contextmanager
def _offline() -> Iterator:
    """HF_HUB_OFFLINE / HF_DATASETS_OFFLINE for the duration, also when `datasets` was imported before (its
    config reads the environment once, at import)."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    import datasets
    import huggingface_hub.constants as hub

    flags = [(datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"), (hub, "HF_HUB_OFFLINE")]
    before = [getattr(module, name) for module, name in flags]
    bars = datasets.is_progress_bar_enabled()
    verbosity = datasets.logging.get_verbosity()
    for module, name in flags:
        setattr(module, name, True)
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    try:
        yield datasets
    finally:
        for (module, name), value in zip(flags, before):
            setattr(module, name, value)
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
        if bars:
            datasets.enable_progress_bars()
        datasets.logging.set_verbosity(verbosity)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
