"""Record models. `extra="forbid"` everywhere except the input pair, whose unknown fields are kept."""

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["A", "B"]
Position = Literal["AB", "BA"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    """One chat turn, as TRL's conversational format and chat templates read it."""

    role: str = Field(..., description="system, user, assistant, ...")
    content: str


class InputPair(BaseModel):
    """One row of an input in our layout (`pairs`), with the default field names. Other layouts (TRL, HH,
    UltraFeedback) are converted to this one at ingest (README: Input formats)."""

    model_config = ConfigDict(extra="allow")

    id: str | int | None = Field(None, description="Stable id; when absent, a sha256 of the content is used.")
    prompt: str | list[Message] = Field(..., min_length=1, description="The user request, or a conversation as "
                                                                     "messages (the responses are its next turn).")
    response_a: str = Field(..., min_length=1)
    response_b: str = Field(..., min_length=1)
    label: str | None = Field(None, pattern="(?i)^(a|b|tie)$",
                              description="Human gold label (A, B or tie, any case), kept apart from model labels.")


class Pair(_Strict):
    """A stored pair, as the judge reads it."""

    pair_id: str
    prompt: str = Field(..., description="The request, or a conversation's readable transcript.")
    response_a: str
    response_b: str
    source: str | None = None
    category: str | None = None
    prompt_messages: list[Message] | None = Field(None, description="The conversation the responses continue, when "
                                                  "the prompt was given as messages.")

    @field_validator("prompt_messages", mode="before")
    @classmethod
    def _decode(cls, value):  # the store hands JSON columns over as text
        return json.loads(value) if isinstance(value, str) else value


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
    forced: bool = Field(False, description="No verdict in the text; read from the logits after an appended marker.")


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
    margin: float | None = Field(None, description="A reward judge's reward(A) - reward(B) (its heads' mean).")
    margin_sd: float | None = Field(None, description="The spread of that difference over an ensemble's heads.")


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


class ExportRow(BaseModel):
    """One labelled pair as `labeler export` writes it; the input's extra fields follow as more columns
    (`input_<name>` where a name below is taken)."""

    model_config = ConfigDict(extra="allow")

    pair_id: str
    prompt: str = Field(..., description="The request, or a conversation's readable transcript.")
    prompt_messages: list[Message] | None = Field(..., description="The conversation, when given as messages.")
    response_a: str
    response_b: str
    label: Literal["A", "B", "tie"] = Field(..., description="tie: the human verdict was a tie.")
    label_source: Literal["human", "model"]
    confidence: float | None = Field(..., description="The model label's confidence; None on a human label.")
    rationale: str | None = Field(..., description="The model label's rationale; None on a human label.")
    votes_a: int | None
    votes_b: int | None
    order_consistent: bool | None
    labeled_at: datetime | None = Field(..., description="When the model label was made; None on a human label.")
    model_label: Verdict | None = Field(..., description="The latest model judgment of the pair, also on a "
                                                         "human-labelled row (None: not judged or undecided).")
    model_confidence: float | None
    model_rationale: str | None
    model_votes_a: int | None
    model_votes_b: int | None
    model_order_consistent: bool | None
    judge_id: str | None = Field(..., description="Provenance of the model judgment (model_*).")
    judge_version: str | None = Field(..., description="The trained judge version (`labeler judges list`) of judge_id.")
    judge_key: str | None
    mode: str | None
    samples: int | None
    seed: int | None
    template_hash: str | None
    model_labeled_at: datetime | None
    source: str | None
    category: str | None


class DpoRow(_Strict):
    """`labeler export --dpo`: TRL's preference format (explicit prompt), which DPOTrainer and RewardTrainer read;
    conversational (messages) when any exported prompt was given as messages."""

    prompt: str | list[Message]
    chosen: str | list[Message]
    rejected: str | list[Message]


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
    human_labels: dict[str, int] = Field(default_factory=dict, description="Human verdicts: A, B, tie and split "
                                         "(an even A/B split between people: no verdict).")
    confidence_histogram: list[dict[str, float | int]]
    quarantined: int
    runs: list[RunRecord]
    review: ReviewQueue = Field(default_factory=ReviewQueue)


RouteReason = Literal["undecided", "order_inconsistent", "split_votes", "low_confidence", "audit", "suspect"]


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
    margin: float | None = Field(None, description="A reward judge's reward(A) - reward(B), shown as its strength.")
    margin_sd: float | None = Field(None, description="Its spread over an ensemble's heads.")


class ReviewAnswer(_Strict):
    """One reviewer's response to one record, as `labeler review pull` reads it back."""

    pair_id: str
    reviewer: str = Field(..., description="Argilla username (the user id when the API key may not list users).")
    status: Literal["submitted", "discarded"]
    label: Literal["A", "B", "tie"] | None = Field(None, description="None for a discarded record.")
    note: str | None = Field(None, description="The reviewer's better rationale, if written.")
    answered_at: datetime


class EvalRow(_Strict):
    """One judged pair with its human label, as `labeler eval` and `labeler calibrate` read it from the store."""

    pair_id: str
    human: Verdict = Field(..., description="Majority of the pair's human labels.")
    label: Verdict | None = Field(None, description="The judge's label; None when every sample abstained.")
    confidence: float = Field(..., ge=0.0, le=1.0, description="Raw (uncalibrated) confidence, as the judge wrote it.")
    p_a: float | None = None
    votes_a: int
    votes_b: int
    abstained: int
    order_consistent: bool | None
    label_ab: Verdict | None
    label_ba: Verdict | None
    mode: Literal["direct", "cot"]
    samples: int
    source: str | None
    category: str | None
    subcategory: str | None = Field(None, description="The pair's `subcategory` input field, if it had one.")
    prompt_hash: str = Field(..., description="md5 of the prompt: cross-validation folds never split a prompt.")
    chars_a: int | None = Field(None, description="Length of response_a in characters (the longer-wins baseline).")
    chars_b: int | None = None
    margin: float | None = Field(None, description="A reward judge's mean reward difference A - B (judgments.margin).")


class CalibrationRecord(_Strict):
    """A fitted temperature for one judge (`calibrations` table); applied to every confidence read back."""

    judge_id: str
    mode: Literal["direct", "cot"]
    samples: int
    method: Literal["temperature"] = "temperature"
    temperature: float = Field(..., gt=0.0, description="Calibrated confidence = sigmoid(|score| / temperature).")
    n_pairs: int = Field(..., description="Human-labelled pairs it was fitted on.")
    ece_before: float | None = Field(None, description="ECE of the raw confidences on those pairs.")
    ece_after: float | None = Field(None, description="ECE after scaling, on the same pairs (in-sample).")
    fitted_on: str = Field(..., description="What it was fitted on (judge keys, human-label origins).")
    fitted_at: datetime


class ReliabilityBin(_Strict):
    low: float
    high: float
    n: int
    confidence: float | None = Field(None, description="Mean confidence in the bin.")
    accuracy: float | None = Field(None, description="Share of the bin's labels that match the human label.")


class CoveragePoint(_Strict):
    """Keep the labels with confidence >= threshold: what share is kept, and how accurate they are."""

    threshold: float
    coverage: float
    n: int
    accuracy: float


class CoverageChoice(CoveragePoint):
    target: float = Field(..., description="The coverage asked for (`--coverage`).")
    confidence: Literal["raw", "calibrated"] = Field(..., description="Which confidence the threshold applies to: "
                                                     "the one status/export/routing read (calibrated once stored).")


class MajorityPoint(_Strict):
    """Agreement when only the first k samples of each order vote (2k votes)."""

    k: int
    votes: int
    accuracy: float
    ci95: tuple[float, float]
    undecided: int


class GroupMetrics(_Strict):
    n: int = Field(..., description="Pairs with a human label and a judgment.")
    agreed: int
    accuracy: float = Field(..., description="Share of pairs whose judge label equals the human label (undecided = wrong).")
    ci95: tuple[float, float] = Field(..., description="Wilson score interval of the accuracy, 95 %.")
    undecided: int
    position_consistency: float | None = Field(None, description="Share of pairs whose two orders agree.")
    a_rate_by_order: dict[Position, float | None] = Field(
        ..., description="Per order, the share of its verdicts naming the response shown first (the letter A as the "
                         "judge saw it). Human labels are balanced, so an unbiased judge is near 0.5 in both.")
    ece: float | None = Field(None, description="Expected calibration error of the raw confidence.")
    ece_calibrated: float | None = Field(None, description="ECE after temperature scaling, cross-validated.")
    longer_wins: float | None = Field(None, description="Agreement of the baseline judge \"the longer response "
                                                        "wins\" on the same pairs (equal lengths count as wrong).")
    human_shorter_n: int | None = Field(None, description="Pairs where the human chose the shorter response.")
    human_shorter_accuracy: float | None = Field(None, description="The judge's agreement on those pairs.")
    gain_at_70: float | None = Field(None, description="Agreement of the 70 % most confident labels minus agreement "
                                                       "of all: how well the confidence ranks the judge's mistakes.")


class CalibrationSummary(_Strict):
    method: Literal["temperature"] = "temperature"
    folds: int = Field(..., description="ece_calibrated: each fold scaled with a temperature fitted on the others.")
    fold_temperatures: list[float]
    temperature: float = Field(..., description="Fitted on all evaluated pairs (what `labeler calibrate` stores "
                                                "when these are the store's only human labels).")
    stored_temperature: float | None = Field(None, description="The calibration the store applies to this judge.")
    ece_stored: float | None = Field(None, description="ECE on these pairs with the stored temperature applied (a "
                                                       "calibration fitted elsewhere, e.g. the starter judge's shipped one).")


class EvalMetrics(GroupMetrics):
    """`labeler eval --out DIR`: metrics.json."""

    files: list[str]
    judge_id: str
    judge_key: str
    mode: Literal["direct", "cot"]
    samples: int
    ci_method: Literal["wilson"] = "wilson"
    order_checked: int = Field(..., description="Pairs where both orders gave a label (position_consistency's base).")
    confusion: dict[Verdict, dict[Literal["A", "B", "undecided"], int]] = Field(
        ..., description="Human label -> judge label -> pairs.")
    maj_at_k: list[MajorityPoint]
    bins: int = Field(..., description="Equal-width confidence bins over [0.5, 1] for ECE and the reliability diagram.")
    reliability: list[ReliabilityBin]
    reliability_calibrated: list[ReliabilityBin]
    coverage_curve: list[CoveragePoint] = Field(..., description="One point per distinct confidence, most confident first.")
    coverage_curve_margin: list[CoveragePoint] | None = Field(None, description="A reward ensemble: the same curve "
                                                             "ordered by |mean reward difference| alone, without the "
                                                             "heads' spread (its confidence uses both).")
    coverage: CoverageChoice
    calibration: CalibrationSummary
    by_source: dict[str, GroupMetrics]
    by_category: dict[str, GroupMetrics]
    by_subcategory: dict[str, GroupMetrics]


# ---- labeler retrain / labeler judges ----------------------------------------------------------------------------
class GoldPair(_Strict):
    """A pair with a human majority label (ties and even splits have none), as retrain reads it."""

    pair: Pair
    label: Verdict
    prompt_hash: str = Field(..., description="The held-out split is by prompt: pairs sharing a prompt share a split.")
    split: Literal["train", "heldout"] | None = Field(None, description="None until retrain assigns it (then fixed).")
    notes: list[str] = Field(default_factory=list, description="Reviewers' rationales for the majority label.")


class TrainingRow(_Strict):
    """One row a judge version was trained on (the version's `train_data.jsonl`)."""

    iteration: int
    pair_id: str
    position: Position = Field(..., description="The order the prompt shows the responses in.")
    kind: Literal["dpo", "sft", "bt"]
    prompt: str = Field(..., description="Exactly what the judge sees at inference (chat template applied); "
                                         "for bt, the user request.")
    chosen: str = Field(..., description="dpo/sft: the completion to learn (rationale + [[X]] or the verdict "
                                         "token); bt: the better response.")
    rejected: str | None = Field(None, description="dpo: an incorrect chain; bt: the worse response.")
    origin: Literal["sample", "rationalization", "note", "gold"] = Field(
        ..., description="Where the chosen text came from.")
    target: float = Field(1.0, ge=0.0, le=1.0, description="bt-probe: the probability that `chosen` is better (below "
                                                          "1 for a suspect label smoothed by `retrain --suspects "
                                                          "smooth`).")
    rejected_origin: Literal["sample", "gold"] | None = None
    source: str | None = Field(None, description="bt: the pair's source (bt-probe's safety expert reads it).")


class JudgeVersion(_Strict):
    """A trained judge registered in the `judges` table (`labeler judges list --json`)."""

    version: str
    method: Literal["star-dpo", "star-sft", "genrm-sft", "bt", "bt-probe"]
    parent: str | None = Field(None, description="The version it was trained from; None = a model directory.")
    start_judge_id: str = Field(..., description="judge_id of the judge it was trained from.")
    base_model: str = Field(..., description="Full-weights model dir (the adapter's base, or the version itself).")
    path: str = Field(..., description="The version's directory (safetensors, config, manifest, metrics).")
    weights: Literal["lora", "full", "head"] = Field(..., description="head = bt-probe: a head on the frozen base.")
    backend: Literal["transformers", "reward"] = Field(..., description="reward = Bradley-Terry scalar head.")
    mode: Literal["direct", "cot"] = Field(..., description="How annotate uses it by default.")
    samples: int
    judge_id: str
    heldout_n: int
    heldout_agreement: float | None = Field(None, description="Agreement with gold on the held-out split.")
    parent_agreement: float | None = Field(None, description="On the same pairs, the judge it had to beat: the "
                                                             "active version, else the model it started from.")
    promoted: bool = Field(..., description="Passed the promotion gate (or was forced).")
    active: bool
    created_at: datetime
    metrics: dict = Field(default_factory=dict)


class RetrainResult(_Strict):
    """What `labeler retrain` did."""

    version: str
    method: str
    path: str
    parent: str | None
    start_judge_id: str
    promoted: bool
    forced: bool
    active: bool
    heldout_n: int
    heldout_agreement: float
    parent_agreement: float
    train_pairs: int
    train_rows: int
    resumed: bool = Field(False, description="Picked up a killed run's data or checkpoint.")
    seconds: float
    reference_agreement: float | None = Field(None, description="bt-probe continuing a judge that ships reference "
                                              "pairs (the starter's held-out training pairs): the new judge's "
                                              "agreement on them, so a gain on the reviewed domain that costs the "
                                              "rest shows.")
    reference_agreement_before: float | None = Field(None, description="The continued judge's agreement on them.")


# ---- labeler audit ----------------------------------------------------------------------------------------------
class AuditRow(_Strict):
    """One human-labelled pair as `labeler audit` scored it with heads that never trained on it."""

    pair_id: str
    source: str | None
    human: Verdict
    strength: float = Field(..., description="The heads' mean reward difference, the human's choice minus the other "
                                             "(negative: the heads prefer the response the human rejected).")
    spread: float = Field(..., description="Its spread over the heads.")
    p_human: float = Field(..., description="The ensemble's calibrated probability of the human's choice.")
    flagged: bool = Field(..., description="1 - p_human >= the audit's confidence: a suspect human label.")


class AuditGroup(_Strict):
    n: int
    flagged: int
    flagged_share: float
    negative_share: float = Field(..., description="Share of pairs with a negative mean strength.")


class AuditReport(_Strict):
    judge_id: str = Field(..., description="The judge whose heads were cross-fitted (or `scratch`).")
    folds: int
    confidence: float = Field(..., description="A label is flagged when the heads give the other response this much.")
    temperature: float = Field(..., description="Fitted on the cross-fitted evidence (all pairs).")
    overall: AuditGroup
    by_source: dict[str, AuditGroup]
    rows: list[AuditRow]
