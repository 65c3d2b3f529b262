"""Record models. `extra="forbid"` everywhere except the input pair, whose unknown fields are kept."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["A", "B"]
Position = Literal["AB", "BA"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputPair(BaseModel):
    """One line of an input JSONL file (or one Parquet row), with the default field names."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(None, description="Stable id; when absent, a sha256 of the content is used.")
    prompt: str = Field(..., min_length=1, description="The user request (may be a multi-turn transcript).")
    response_a: str = Field(..., min_length=1)
    response_b: str = Field(..., min_length=1)
    label: Literal["A", "B", "a", "b"] | None = Field(None, description="Human gold label, kept apart from model labels.")


class Pair(_Strict):
    """A stored pair, as the judge reads it."""

    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    source: str | None = None
    category: str | None = None


class Sample(_Strict):
    """One judge call for one order: a sampled rationale (cot) or a single verdict-token read (direct)."""

    pair_id: str
    judge_key: str
    position: Position = Field(..., description="AB: response_a shown first; BA: swapped.")
    sample_idx: int
    text: str = Field(..., description="Raw completion (empty in direct mode).")
    verdict: Verdict | None = Field(None, description="Parsed verdict mapped back to the original order; None = abstain.")
    logprob_a: float | None = Field(None, description="log P(verdict = original A) at the verdict token, when known.")
    logprob_b: float | None = None


class Judgment(_Strict):
    """The label for one pair from one judge configuration, both orders pooled."""

    pair_id: str
    judge_key: str = Field(..., description="sha256 of judge id, template, mode, K, seed and decoding params.")
    judge_id: str
    mode: Literal["direct", "cot"]
    samples: int
    seed: int
    template_hash: str
    label: Verdict | None = Field(None, description="None when every sample abstained.")
    confidence: float = Field(..., ge=0.0, le=1.0)
    p_a: float | None = Field(None, ge=0.0, le=1.0, description="Pooled probability that A is better.")
    votes_a: int
    votes_b: int
    abstained: int
    order_consistent: bool | None = Field(None, description="Both orders agree on the winner (None if one order abstained).")
    label_ab: Verdict | None = None
    label_ba: Verdict | None = None
    rationale: str
    run_id: str
    created_at: datetime


class QuarantineRow(_Strict):
    file: str
    line: int = Field(..., description="1-based line (JSONL) or row (Parquet) number.")
    field: str | None
    reason: str
    raw: str | None = Field(None, description="The offending line, cut to 2,000 characters.")


class RunRecord(_Strict):
    run_id: str
    command: str
    judge_key: str | None
    judge_id: str | None
    mode: str | None
    samples: int | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    n_target: int
    n_done: int


class ExportRow(_Strict):
    """One labelled pair as `labeler export` writes it."""

    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    label: Verdict
    label_source: Literal["human", "model"]
    confidence: float | None
    rationale: str | None
    votes_a: int | None
    votes_b: int | None
    order_consistent: bool | None
    judge_id: str | None
    judge_key: str | None
    mode: str | None
    samples: int | None
    seed: int | None
    template_hash: str | None
    labeled_at: datetime | None
    source: str | None


class DpoRow(_Strict):
    """`labeler export --dpo`: the standard preference format TRL's DPOTrainer reads."""

    prompt: str
    chosen: str
    rejected: str


class ReviewQueue(_Strict):
    """Pairs sent to human review (`labeler review push`), by how far they got; each count includes the later stages."""

    routed: int = Field(0, description="Chosen for review (doubtful or audit sample).")
    pushed: int = Field(0, description="Sent to Argilla.")
    answered: int = Field(0, description="At least one reviewer submitted a label.")
    discarded: int = Field(0, description="Discarded by the reviewers, so no label.")


class StatusReport(_Strict):
    """`labeler status --json`."""

    db: str
    pairs: int
    by_state: dict[str, int]
    label_balance: dict[str, int]
    confidence_histogram: list[dict[str, float | int]]
    quarantined: int
    runs: list[RunRecord]
    review: ReviewQueue = Field(default_factory=ReviewQueue)


RouteReason = Literal["undecided", "order_inconsistent", "split_votes", "low_confidence", "audit"]


class RoutingCandidate(_Strict):
    """The latest judgment of a pair without a human label, as routing reads it."""

    pair_id: str
    judge_key: str
    judge_id: str
    label: Verdict | None
    confidence: float = Field(..., ge=0.0, le=1.0)
    votes_a: int
    votes_b: int
    order_consistent: bool | None


class ReviewRecord(_Strict):
    """One pair as it is sent to Argilla: record id = pair id."""

    pair_id: str
    prompt: str
    response_a: str
    response_b: str
    judge_rationale: str
    judge_label: Verdict | None = Field(..., description="Shown as the suggestion; None when every sample abstained.")
    confidence: float = Field(..., ge=0.0, le=1.0, description="The suggestion's score.")
    judge_id: str
    judge_key: str
    route_reason: RouteReason


class ReviewAnswer(_Strict):
    """One reviewer's response to one record, as `labeler review pull` reads it back."""

    pair_id: str
    reviewer: str = Field(..., description="Argilla username (the user id when the API key may not list users).")
    status: Literal["submitted", "discarded"]
    label: Literal["A", "B", "tie"] | None = Field(None, description="None for a discarded record.")
    note: str | None = Field(None, description="The reviewer's better rationale, if written.")
    answered_at: datetime
