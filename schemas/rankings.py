"""Records of N responses per prompt (`labeler rank`): a group, its responses' scores, the rankings export."""

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.records import Message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(_Strict):
    text: str
    rating: float | None = Field(None, description="Human rating from the input (gold), when it had one.")
    model: str | None = Field(None, description="The model that wrote it, when the input says.")


class Group(_Strict):
    """One prompt with its N responses, as ingest stores it (`group_id`: a sha256 of prompt and responses)."""

    group_id: str
    prompt: str = Field(..., description="The request, or a conversation's readable transcript.")
    prompt_messages: list[Message] | None = None
    responses: list[Response] = Field(..., min_length=2)
    given_id: str | None = Field(None, description="The input row's own id, if it had one.")
    source: str | None = None
    category: str | None = None

    @field_validator("prompt_messages", mode="before")
    @classmethod
    def _decode(cls, value):  # the store hands JSON columns over as text
        return json.loads(value) if isinstance(value, str) else value


class ResponseScore(_Strict):
    """One response's score from one judge: a reward (reward judges) or a Bradley-Terry score fitted on the
    group's pair judgments (pairwise judges)."""

    group_id: str
    idx: int = Field(..., description="The response's position in the input row, from 0.")
    judge_key: str
    judge_id: str
    method: Literal["reward", "bt"]
    score: float
    uncertainty: float | None = Field(None, description="Standard error (bt) or the ensemble's spread (reward); "
                                                        "None where the judge gives none.")
    comparisons: int = Field(0, description="bt: pairs of the group judged (each in both orders); reward: 0.")
    run_id: str


class RankedResponse(_Strict):
    idx: int
    text: str
    rank: int = Field(..., description="1 = best.")
    score: float
    uncertainty: float | None
    rating: float | None
    model: str | None


class RankingRow(_Strict):
    """`labeler export --rankings`: one prompt with its responses, best first."""

    group_id: str
    prompt: str
    prompt_messages: list[Message] | None
    responses: list[RankedResponse]
    ranked_by: Literal["human", "model"] = Field(..., description="human: every response had a rating (gold), or "
                                                 "people ranked them (scores: responses each beats, a tie half).")
    margin: float | None = Field(..., description="Best score minus worst score.")
    near_tie: bool = Field(..., description="The best and the worst are within the judge's uncertainty (95 %).")
    judge_id: str | None
    judge_key: str | None
    method: str | None
    comparisons: int | None
    source: str | None
    category: str | None


class RankEvalMetrics(_Strict):
    """`labeler eval --rank`: a judge's rankings against human ratings or pairwise votes, per prompt."""

    files: list[str]
    judge_id: str
    judge_key: str
    method: Literal["reward", "bt"]
    groups: int = Field(..., description="Prompts with at least two responses and a human preference among them.")
    judge_calls: int = Field(..., description="Calls this run made: responses scored (reward) or pairs judged (bt).")
    pairs: int = Field(..., description="Human pairwise preferences: two rated responses with different ratings, or "
                                        "a human-labelled pair.")
    pairwise_agreement: float = Field(..., description="Share of them the ranking orders the same way (equal scores "
                                                       "count as wrong).")
    pairwise_ci95: tuple[float, float] = Field(..., description="Wilson interval, 95 %.")
    tau_groups: int = Field(..., description="Prompts whose human order is not all ties.")
    kendall_tau: float | None = Field(..., description="Mean over prompts of Kendall's tau-b between the judge's "
                                                       "scores and the human scores (ratings, or a Bradley-Terry fit "
                                                       "of the votes).")
    kendall_tau_ci95: tuple[float, float] | None = Field(..., description="Bootstrap over prompts, 95 %.")
    top1_groups: int = Field(..., description="Prompts with one human best.")
    top1: float | None = Field(..., description="Share of them where the judge's best is the human best.")
    top1_ci95: tuple[float, float] | None
    top1_chance: float | None = Field(..., description="What picking at random would score: mean of 1 / N.")


class RankRoute(_Strict):
    """A ranking sent to review (`labeler review push --rankings`): the judge's order, best first, as suggested."""

    group_id: str
    n: int
    route_reason: str
    judge_key: str
    judge_id: str
    judge_order: list[int] = Field(..., description="Response indexes, best first.")
    margin: float = Field(..., description="Score of the best minus score of the second.")
    z: float | None = Field(None, description="margin over its standard error; None where the judge gives none.")


class RankReviewRecord(RankRoute):
    """A routed ranking with the text the reviewer sees."""

    prompt: str
    responses: list[str]


class RankAnswer(_Strict):
    """One reviewer's response to one ranking record: the rank of each response (1 = best; equal ranks are ties)."""

    group_id: str
    reviewer: str
    status: Literal["submitted", "discarded"]
    ranks: dict[int, int] | None = Field(None, description="Response index -> rank; None for a discarded record.")
    answered_at: datetime
