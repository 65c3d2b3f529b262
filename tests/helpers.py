"""Small shared test helpers (fixtures live in conftest.py)."""

import json
from pathlib import Path

from typer.testing import CliRunner

runner = CliRunner()


def run(*args, env: dict | None = None, ok: bool = False):
    """Invoke the `labeler` app in-process (exceptions propagate); `ok=True` also asserts exit code 0."""
    from labeler.cli import app

    result = runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def write_pairs(path: Path, n: int, labeled: bool = False, start: int = 0) -> Path:
    with path.open("w") as f:
        for i in range(start, start + n):
            row = {"id": f"p{i:03d}", "prompt": f"What is {i} + {i}?", "response_a": f"It is {2 * i}.",
                   "response_b": f"It is {2 * i + 1}.", "source": "arith"}
            if labeled:
                row["label"] = "A"
            f.write(json.dumps(row) + "\n")
    return path


def query(db, sql, params=()):
    """Rows of `sql` on the store `db`, read-only."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()
