"""Evaluation of a judge against human labels: `metrics` and `calibration` (pure functions), `plots` (PNGs),
`report` (report.md), and `run`, the eval and calibrate stages (re-exported here)."""

from labeler.evaluation.report import report_markdown, write_outputs
from labeler.evaluation.run import EvalOptions, EvalResult, calibrate, eval_pairs, evaluate

__all__ = ["EvalOptions", "EvalResult", "calibrate", "eval_pairs", "evaluate", "report_markdown", "write_outputs"]
