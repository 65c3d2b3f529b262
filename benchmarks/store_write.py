"""How long `annotate` holds the DuckDB write lock to commit a batch: bulk (Arrow) insert vs row by row.

    .venv/bin/python benchmarks/store_write.py --judgments 2000 --samples-per-judgment 8

Side by side in one run, on the same rows (fake backend judgments of synthetic pairs): the time of
`Store.save_batch` (one transaction: samples, judgments, run progress) with labeler's bulk insert, and the same
transaction with the row-by-row `executemany` it replaced. Prints one JSON line with both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rows(n: int, k: int):
    from labeler.judge.backends import make_backend
    from labeler.judge.judge import Judge, JudgeConfig
    from schemas import Pair

    judge = Judge(make_backend("fake"), JudgeConfig(mode="cot", samples=k // 2) if k > 2 else JudgeConfig())
    pairs = [Pair(pair_id=f"p{i}", prompt=f"q{i}", response_a=f"a{i}", response_b=f"b{i}") for i in range(n)]
    return pairs, *judge.judge(pairs, "bench")


def row_by_row(con, judgments, samples) -> None:
    from labeler.store.judgments import JUDGMENT_COLUMNS, SAMPLE_COLUMNS

    for table, columns, items in (("samples", SAMPLE_COLUMNS, samples), ("judgments", JUDGMENT_COLUMNS, judgments)):
        con.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [[getattr(x, c) for c in columns] for x in items])


def timed(db: Path, pairs, judgments, samples, bulk: bool) -> float:
    from labeler.store import Store
    from labeler.store import judgments as store_judgments
    from labeler.store.db import transaction

    with Store(db) as store:
        store.con.executemany("INSERT INTO pairs (pair_id, prompt, response_a, response_b, content_hash, source_file, "
                              "source_line) VALUES (?, ?, ?, ?, ?1, 'bench', ?)",
                              [[p.pair_id, p.prompt, p.response_a, p.response_b, i] for i, p in enumerate(pairs)])
        store.start_run("bench", "bench", len(judgments))
        began = time.perf_counter()
        if bulk:
            store.save_batch("bench", judgments, samples)
        else:
            with transaction(store.con):
                row_by_row(store.con, judgments, samples)
                store_judgments.advance_run(store.con, "bench", len(judgments))
        return time.perf_counter() - began


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=2000)
    parser.add_argument("--samples-per-judgment", type=int, default=2, help="2 = direct (one per order).")
    args = parser.parse_args(argv)
    pairs, judgments, samples = rows(args.judgments, args.samples_per_judgment)
    with tempfile.TemporaryDirectory() as tmp:
        bulk = timed(Path(tmp) / "bulk.duckdb", pairs, judgments, samples, bulk=True)
        old = timed(Path(tmp) / "rows.duckdb", pairs, judgments, samples, bulk=False)
    result = {"judgments": len(judgments), "samples": len(samples), "bulk_s": round(bulk, 3),
              "row_by_row_s": round(old, 3), "speedup": round(old / bulk, 1)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
