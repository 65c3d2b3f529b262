"""`labeler export`: write the store's labels to a file (JSONL, Parquet) and/or a `datasets` folder.

Nothing already there is lost by mistake: a target that is the store (or its WAL, its spill folder, a judges
dir), or that exists and is not a regular file (a device, a FIFO), is refused; a symbolic link is written
through (its target is replaced, the link stays); a folder is replaced only when an export wrote it (it holds
EXPORT_MARKER) or it is empty. Writes are atomic: a killed export leaves the old or the whole new file."""

import os
import stat
from pathlib import Path

from labeler.errors import LabelerError
from labeler.paths import atomic_path
from labeler.store import Store

FORMATS = ("jsonl", "parquet")
EXPORT_MARKER = ".labeler-export"  # in every `datasets` folder an export writes: only those are replaced


def format_for(out: Path) -> str:
    """The format a file name asks for: `.parquet`/`.pq` is Parquet, anything else JSONL."""
    return "parquet" if out.suffix.lower() in (".parquet", ".pq") else "jsonl"


def export(db: Path, out: Path | None = None, fmt: str | None = None, dpo: bool = False,
           min_confidence: float | None = None, columns: list[str] | None = None, hf: Path | None = None) -> int:
    """Write the labels to `out` (JSONL or Parquet; `fmt` defaults to what the file name says) and/or to `hf`, a
    `datasets` folder (save_to_disk). Atomic: a killed export never leaves a half file or folder. Returns rows."""
    if out is None and hf is None:
        raise LabelerError("nothing to write: pass --out FILE and/or --hf DIR")
    fmt = fmt or (format_for(out) if out is not None else "jsonl")
    if fmt not in FORMATS:
        raise ValueError(f"--format must be jsonl or parquet, got {fmt!r}")
    repeated = sorted({c for c in columns or [] if columns.count(c) > 1})
    if repeated:
        raise LabelerError(f"--columns: {', '.join(map(repr, repeated))} given twice")
    out = _file_target(out) if out is not None else None
    hf = _folder_target(hf) if hf is not None else None
    with Store(db, create=False, read_only=True) as store:
        _refuse_store_paths(db, store, out, hf)
        n = 0
        if out is not None:
            with atomic_path(out) as tmp:
                n = store.copy_export(tmp, fmt, dpo, min_confidence, columns)
        if hf is not None:
            table = store.export_arrow(dpo, min_confidence, columns)
            _save_to_disk(table, hf)
            n = table.num_rows
    return n


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LabelerError(f"{path}: cannot read: {exc.strerror}") from None


def _file_target(out: Path) -> Path:
    """Where --out is written: the path, or the file a symbolic link points to (written through)."""
    target = out.resolve() if out.is_symlink() else out
    if not target.parent.exists():
        raise LabelerError(f"{out}: folder {target.parent} does not exist")
    mode = _mode(target)
    if mode is not None and stat.S_ISDIR(mode):
        raise LabelerError(f"{out}: is a directory; --out takes a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise LabelerError(f"{out}: exists and is not a regular file (a device, pipe or socket); --out takes a file "
                           "name")
    return target


def _folder_target(hf: Path) -> Path:
    target = hf.resolve() if hf.is_symlink() else hf
    if not target.parent.exists():
        raise LabelerError(f"{hf}: folder {target.parent} does not exist")
    mode = _mode(target)
    if mode is not None and not stat.S_ISDIR(mode):
        raise LabelerError(f"{hf}: exists and is not a folder; --hf takes a new folder or one an export wrote")
    if mode is not None and not _replaceable(target):
        raise LabelerError(f"{hf}: exists and is not a folder an export wrote (no {EXPORT_MARKER} in it); --hf takes "
                           "a new, an empty or an exported folder")
    return target


def _refuse_store_paths(db: Path, store: Store, out: Path | None, hf: Path | None) -> None:
    """The store, its WAL and spill folder, and the judge versions' folders are never an export's target."""
    from trainer.versions import judges_dir

    db = db.resolve()
    files = [db, db.with_name(db.name + ".wal"), db.with_name(db.name + ".tmp")]
    # the judges dir of this store (--judges-dir's env or default), and every registered version's own folder
    folders = {judges_dir(db), *(Path(path).resolve() for path in store.judge_paths())}
    for option, target in (("--out", out), ("--hf", hf)):
        if target is None:
            continue
        target = target.resolve()
        hit = next((f for f in files if f == target or (option == "--hf" and target in f.parents)), None)
        if hit is not None:
            raise LabelerError(f"{option} {target}: would overwrite the store ({hit}); choose another path")
        folder = next((d for d in folders if d == target or d in target.parents), None)
        if folder is not None:
            raise LabelerError(f"{option} {target}: is inside the judge folder {folder}; choose another path")


def _replaceable(folder: Path) -> bool:
    return folder.is_dir() and ((folder / EXPORT_MARKER).exists() or not any(folder.iterdir()))


def _save_to_disk(table, folder: Path) -> None:
    """`datasets.Dataset(table).save_to_disk` into a sibling, then swapped in: a reader sees the old or the new."""
    import shutil

    import datasets

    tmp, old = folder.with_name(f".{folder.name}.tmp"), folder.with_name(f".{folder.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        datasets.Dataset(table).save_to_disk(str(tmp))
        (tmp / EXPORT_MARKER).write_text("written by `labeler export --hf`; a later export may replace this folder\n")
    except OSError as exc:  # a full disk: name the folder (datasets' errors often name none, or a temp file)
        shutil.rmtree(tmp, ignore_errors=True)
        raise LabelerError(f"{folder}: cannot write the `datasets` folder: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bars:
            datasets.enable_progress_bars()
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)
