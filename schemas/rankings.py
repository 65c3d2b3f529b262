"""Records of N responses per prompt (`labeler rank`): a group, its responses' scores, the rankings export."""

import json
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
    text: str | list[Message]
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
    ranked_by: Literal["human", "model"] = Field(..., description="human: every response had a rating (gold).")
    margin: float | None = Field(..., description="Best score minus worst score.")
    near_tie: bool = Field(..., description="The best and the worst are within the judge's uncertainty (95 %).")
    judge_id: str | None
    judge_key: str | None
    method: str | None
    comparisons: int | None
    source: str | None
    category: str | None
