"""The DuckDB connection: opening, migrations, transactions."""

from collections.abc import Iterator
from contextlib import contextmanager
import os
import shutil
import time
from pathlib import Path

import duckdb

from labeler.errors import LabelerError, StoreBusy
from labeler.store.migrations import MIGRATIONS

DEFAULT_MEMORY_LIMIT = "1GB"


def connect(path: str | Path, wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open (and migrate) the database. Another labeler process holds the file only briefly (a batch
    commit, a status query), so a lock conflict is retried for `wait_seconds` before it is an error."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise LabelerError(f"{path}: is a directory, expected a DuckDB database file")
    if not path.parent.exists():
        raise LabelerError(f"{path}: folder {path.parent} does not exist")
    if not is_duckdb_file(path):  # DuckDB would open it as a read-only view and keep every write in memory
        raise LabelerError(f"{path}: exists and is not a DuckDB database; pass --db a new or a labeler .duckdb file")
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("LABELER_LOCK_WAIT", "30"))
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise LabelerError(f"{path}: cannot open database: {str(exc).splitlines()[0]}") from None
            if time.monotonic() > deadline:
                raise StoreBusy(f"{path}: database is held by another process for over {wait_seconds:g} s") from None
            time.sleep(0.2)
        except duckdb.Error as exc:  # a damaged file (bad checksum, ...)
            raise LabelerError(f"{path}: cannot open database: {' '.join(str(exc).split())}; the file is damaged "
                               "(restore it from a copy, or pass a new --db)") from None
    # DuckDB's default (80 % of RAM) let a 1M-row ingest reach 5.3 GB RSS; with a limit it spills to <db>.tmp
    con.execute("SET memory_limit = ?", [os.environ.get("LABELER_DUCKDB_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)])
    # spill files of a killed ingest: this process holds the database alone, so nobody else is using them
    shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
    migrate(con)
    return con


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
