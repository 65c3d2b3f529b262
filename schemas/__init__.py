"""Pydantic models of every record that crosses a boundary of labeler (files in, rows out)."""

from schemas.records import (
    CalibrationRecord,
    DpoRow,
    EvalMetrics,
    EvalRow,
    ExportRow,
    InputPair,
    Pair,
    Judgment,
    QuarantineRow,
    ReviewAnswer,
    ReviewQueue,
    ReviewRecord,
    RoutingCandidate,
    RunRecord,
    Sample,
    StatusReport,
)

ALL_MODELS = {
    "input_pair": InputPair,
    "pair": Pair,
    "judgment": Judgment,
    "sample": Sample,
    "export_row": ExportRow,
    "dpo_row": DpoRow,
    "quarantine_row": QuarantineRow,
    "run_record": RunRecord,
    "status_report": StatusReport,
    "review_queue": ReviewQueue,
    "routing_candidate": RoutingCandidate,
    "review_record": ReviewRecord,
    "review_answer": ReviewAnswer,
    "eval_row": EvalRow,
    "eval_metrics": EvalMetrics,
    "calibration_record": CalibrationRecord,
}

__all__ = [*(m.__name__ for m in ALL_MODELS.values()), "ALL_MODELS"]
