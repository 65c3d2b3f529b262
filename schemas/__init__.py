"""Pydantic models of every record that crosses a boundary of labeler (files in, rows out)."""

from schemas.records import (
    CalibrationRecord,
    DpoRow,
    EvalMetrics,
    EvalRow,
    ExportRow,
    GoldPair,
    InputPair,
    Pair,
    Judgment,
    JudgeVersion,
    QuarantineRow,
    ReviewAnswer,
    ReviewQueue,
    RetrainResult,
    ReviewRecord,
    RoutingCandidate,
    RunRecord,
    Sample,
    StatusReport,
    TrainingRow,
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
    "gold_pair": GoldPair,
    "training_row": TrainingRow,
    "judge_version": JudgeVersion,
    "retrain_result": RetrainResult,
}

__all__ = [*(m.__name__ for m in ALL_MODELS.values()), "ALL_MODELS"]
