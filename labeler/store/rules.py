"""Which label a pair has, in SQL, in one place: every query that reads labels builds on these.

The rule: a human label outranks every model label. A pair any person answered (`REVIEWED`: a file label or a
reviewer's answer, even "tie") reports the human A/B majority (`HUMAN`; none on an even split) and is never
routed to review nor re-judged by `annotate --relabel`; every other pair reports its latest model judgment
(`LATEST`), whose confidence is calibrated when a temperature is stored for its judge.
"""

from labeler.store.calibrations import CALIBRATED_CONFIDENCE
from labeler.store.calibrations import JOIN as CALIBRATION_JOIN

# Each pair's latest judgment, its confidence calibrated when a calibration is stored for the judge (the judge's
# own value stays in raw_confidence): status, export and review routing all read confidences through this.
LATEST = f"""
    SELECT DISTINCT ON (j.pair_id) j.* REPLACE ({CALIBRATED_CONFIDENCE} AS confidence), j.confidence AS raw_confidence
    FROM judgments j {CALIBRATION_JOIN} ORDER BY j.pair_id, j.created_at DESC
"""
HUMAN = """
    SELECT pair_id, CASE WHEN count_if(label = 'A') > count_if(label = 'B') THEN 'A'
                         WHEN count_if(label = 'B') > count_if(label = 'A') THEN 'B' END AS label
    FROM gold_labels WHERE label IN ('A', 'B') GROUP BY pair_id
"""  # the human A/B majority (NULL on an even split); a pair any human answered (even "tie") gets no model label
REVIEWED = "SELECT DISTINCT pair_id FROM gold_labels"
