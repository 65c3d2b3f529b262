"""The DuckDB connection: opening, migrations, transactions."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from labeler.errors import LabelerError
from labeler.store.migrations import MIGRATIONS


def connect(path: str | Path) -> duckdb.DuckDBPyConnection:
    path = Path(path)
    if path.exists() and path.is_dir():
        raise LabelerError(f"{path}: is a directory, expected a DuckDB database file")
    if not path.parent.exists():
        raise LabelerError(f"{path}: folder {path.parent} does not exist")
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise LabelerError(f"{path}: database is in use by another process (wait for it or use another --db)") from None
        raise LabelerError(f"{path}: cannot open database: {str(exc).splitlines()[0]}") from None
    migrate(con)
    return con


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
