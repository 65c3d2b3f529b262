"""SQL for confidence calibration: one temperature per (judge_id, mode, samples), applied where labels are read.

`labeler.evaluation.calibration` documents the formula; `CALIBRATED_CONFIDENCE` is the same in SQL. It is used by
`rules.LATEST`, so status, export (`--min-confidence`) and review routing all see calibrated confidences.
"""

from datetime import datetime, timezone

import duckdb

from schemas import CalibrationRecord

_P = "greatest(least(j.p_a, 1 - 1e-6), 1e-6)"
SCORE = f"CASE WHEN j.mode = 'cot' THEN ln((j.votes_a + 0.5) / (j.votes_b + 0.5)) ELSE ln({_P} / (1 - {_P})) END"
# `j` is a judgments row, `c` the calibrations row joined on (judge_id, mode, samples), NULL when none is stored.
CALIBRATED_CONFIDENCE = f"""CASE WHEN c.temperature IS NULL OR j.label IS NULL THEN j.confidence
    ELSE coalesce(1.0 / (1.0 + exp(-abs({SCORE}) / c.temperature)), j.confidence) END"""
JOIN = "LEFT JOIN calibrations c ON c.judge_id = j.judge_id AND c.mode = j.mode AND c.samples = j.samples"
COLUMNS = list(CalibrationRecord.model_fields)


def save(con: duckdb.DuckDBPyConnection, record: CalibrationRecord) -> None:
    con.execute(
        f"INSERT OR REPLACE INTO calibrations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
        [getattr(record, c) for c in COLUMNS],
    )


def get(con: duckdb.DuckDBPyConnection, judge_id: str, mode: str, samples: int) -> CalibrationRecord | None:
    row = con.execute(
        f"SELECT {', '.join(COLUMNS)} FROM calibrations WHERE judge_id = ? AND mode = ? AND samples = ?",
        [judge_id, mode, samples],
    ).fetchone()
    return CalibrationRecord(**dict(zip(COLUMNS, row))) if row else None


def delete(con: duckdb.DuckDBPyConnection, judge_id: str, mode: str, samples: int) -> int:
    return con.execute("DELETE FROM calibrations WHERE judge_id = ? AND mode = ? AND samples = ?",
                       [judge_id, mode, samples]).fetchone()[0]


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
