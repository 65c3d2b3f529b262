"""What a run against a paid endpoint will send, counted before it starts: requests and prompt tokens."""

from dataclasses import dataclass

from labeler.judge.judge import Judge
from labeler.judge.prompts import POSITIONS
from schemas import Pair


@dataclass(frozen=True)
class CostEstimate:
    endpoint: str
    pairs: int
    requests: int  # an upper bound: cot counts one more request per sample that must be asked for its verdict
    prompt_tokens: int  # sent in those requests (cot: the prompt once per sample)
    max_completion_tokens: int
    counted_by: str  # "the tokenizer's chat template" or the estimate used without one

    def __str__(self) -> str:
        return (f"{self.endpoint}: {self.pairs} pairs, up to {self.requests:,} requests, about "
                f"{self.prompt_tokens:,} prompt tokens ({self.counted_by}), at most {self.max_completion_tokens:,} "
                "completion tokens")


def per_pair_requests(judge: Judge) -> int | None:
    """Requests one pair takes at most (both orders); None for a backend that sends none."""
    plan = getattr(judge.backend, "requests_per_prompt", None)
    return None if plan is None else len(POSITIONS) * plan(judge.config.mode, judge.config.samples)


def estimate(judge: Judge, pairs: list[Pair]) -> CostEstimate:
    backend, config = judge.backend, judge.config
    per_prompt = backend.requests_per_prompt(config.mode, config.samples)
    sends = 1 if config.mode == "direct" else config.samples  # requests that carry the whole judge prompt
    tokens = sum(backend.prompt_tokens(text) for _, _, text in judge._prompts(pairs)) * sends
    prompts = len(pairs) * len(POSITIONS)
    completion = prompts * (1 if config.mode == "direct" else config.samples * (config.max_new_tokens + 1))
    counted = ("the tokenizer's chat template" if getattr(backend, "tokenizer", None) is not None
               else "estimated at 4 characters a token")
    return CostEstimate(getattr(backend, "base_url", "?"), len(pairs), prompts * per_prompt, tokens, completion,
                        counted)
