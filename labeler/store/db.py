"""The DuckDB connection: opening, migrations, transactions."""

from collections.abc import Iterator
from contextlib import contextmanager
import os
import shutil
import stat
import time
from pathlib import Path

import duckdb

from labeler.errors import LabelerError, StoreBusy
from labeler.store.migrations import MIGRATIONS

DEFAULT_MEMORY_LIMIT = "1GB"


def connect(path: str | Path, wait_seconds: float | None = None, create: bool = True,
            read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (and migrate) the database. Another labeler process holds the file only briefly (a batch
    commit, a status query), so a lock conflict is retried for `wait_seconds` before it is an error.

    `create`: a missing or empty database gets labeler's tables (ingest, annotate); otherwise it is refused.
    `read_only`: open without writing (status, export, quarantine, judges list), so a store on a read-only
    filesystem can be read. A database with tables of another application is always refused, untouched."""
    path = Path(path)
    _check_path(path, create)
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("LABELER_LOCK_WAIT", "30"))
    con = _open(path, wait_seconds, read_only)
    try:
        _check_owner(con, path, create)
        if read_only and _pending(con):  # an older store: migrate once with a writable connection
            con.close()
            con = _open(path, wait_seconds, False)
            migrate(con)
            con.close()
            con = _open(path, wait_seconds, True)
    except BaseException:
        con.close()
        raise
    # DuckDB's default (80 % of RAM) let a 1M-row ingest reach 5.3 GB RSS; with a limit it spills to <db>.tmp
    con.execute("SET memory_limit = ?", [os.environ.get("LABELER_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)])
    # spill files of a killed ingest: no writer holds the database now (its lock excludes ours), so nobody is
    # writing them (on a read-only filesystem this does nothing)
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    if not read_only:
        migrate(con)
    return con


def _check_path(path: Path, create: bool) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise LabelerError(f"{path}: cannot read: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise LabelerError(f"{path}: is a directory, expected a DuckDB database file")
    if mode is not None and not stat.S_ISREG(mode):  # opening a FIFO would wait for a writer forever
        raise LabelerError(f"{path}: not a regular file (a pipe, socket or device); pass --db a DuckDB database file")
    if mode is None and not create:
        raise LabelerError(f"{path}: no such database")
    if not path.parent.exists():
        raise LabelerError(f"{path}: folder {path.parent} does not exist")
    if not is_duckdb_file(path):  # DuckDB would open it as a read-only view and keep every write in memory
        raise LabelerError(f"{path}: exists and is not a DuckDB database; pass --db a new or a labeler .duckdb file")


def _open(path: Path, wait_seconds: float, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise LabelerError(f"{path}: cannot open database: {str(exc).splitlines()[0]}") from None
            if time.monotonic() > deadline:
                raise StoreBusy(f"{path}: database is held by another process for over {wait_seconds:g} s") from None
            time.sleep(0.2)
        except duckdb.Error as exc:  # a damaged file (bad checksum, ...)
            raise LabelerError(f"{path}: cannot open database: {' '.join(str(exc).split())}; the file is damaged "
                               "(restore it from a copy, or pass a new --db)") from None


def _check_owner(con: duckdb.DuckDBPyConnection, path: Path, create: bool) -> None:
    """A labeler store has `schema_migrations`; any other table means the file belongs to another application,
    which labeler must not add tables to. An empty database is labeler's to fill only when `create`."""
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "ORDER BY table_name").fetchall()]
    if "schema_migrations" in names:
        return
    if names:
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise LabelerError(f"{path}: a DuckDB database of another application (tables: {shown}), left untouched; "
                           "pass --db a new or a labeler .duckdb file")
    if not create:
        raise LabelerError(f"{path}: an empty DuckDB database, not a labeler store (run `labeler ingest` or "
                           "`labeler annotate` on it first)")


def _pending(con: duckdb.DuckDBPyConnection) -> bool:
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    return any(v not in done for v in range(1, len(MIGRATIONS) + 1))


def is_duckdb_file(path: Path) -> bool:
    """True for a missing file (DuckDB creates it) and for a DuckDB database ("DUCK" at byte 8)."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise LabelerError(f"{path}: cannot read: {exc.strerror}") from None
    return head[8:12] == b"DUCK"


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, (name, sql) in enumerate(MIGRATIONS, start=1):
        if version in done:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
        applied.append(name)
    return applied


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
