"""Which label a pair has, in SQL, in one place: every query that reads labels builds on these.

The rule: a human label outranks every model label. A pair any person answered (`REVIEWED`: a file label or a
reviewer's answer, even "tie") reports the human verdict (`HUMAN`: A or B when it has more votes than each of the
other two answers, else "tie" when anyone answered tie, else none: an even A/B split) and is never routed to review
nor re-judged by `annotate --relabel`; every other pair reports its latest model judgment (`LATEST`), whose
confidence is calibrated when a temperature is stored for its judge. Gold labels for training and evaluation are
the A/B verdicts only.
"""

from labeler.store.calibrations import CALIBRATED_CONFIDENCE
from labeler.store.calibrations import JOIN as CALIBRATION_JOIN

# Each pair's latest judgment, its confidence calibrated when a calibration is stored for the judge (the judge's
# own value stays in raw_confidence): status, export and review routing all read confidences through this.
LATEST = f"""
    SELECT DISTINCT ON (j.pair_id) j.* REPLACE ({CALIBRATED_CONFIDENCE} AS confidence), j.confidence AS raw_confidence
    FROM judgments j {CALIBRATION_JOIN} ORDER BY j.pair_id, j.created_at DESC
"""


def latest_of(judge_id: str | None) -> str:
    """LATEST, or each pair's latest judgment by one judge (`export --judge`)."""
    if judge_id is None:
        return LATEST
    literal = "'" + judge_id.replace("'", "''") + "'"
    return LATEST.replace("ORDER BY j.pair_id", f"WHERE j.judge_id = {literal} ORDER BY j.pair_id")


HUMAN = """
    SELECT pair_id, CASE WHEN a > b AND a > t THEN 'A' WHEN b > a AND b > t THEN 'B' WHEN t > 0 THEN 'tie' END AS label
    FROM (SELECT pair_id, count_if(label = 'A') AS a, count_if(label = 'B') AS b, count_if(label = 'tie') AS t
          FROM gold_labels GROUP BY pair_id)
"""  # the human verdict: A, B, tie, or NULL on an even A/B split; a pair any human answered gets no model label
REVIEWED = "SELECT DISTINCT pair_id FROM gold_labels"
