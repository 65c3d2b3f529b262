"""The backend protocol every judge backend implements (transformers, vllm, fake)."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0
    force_verdict: bool = True  # a sample without a verdict gets one read from the logits; False = it abstains


@dataclass
class Completion:
    text: str
    # log P of each verdict choice at the position where the last "[[X" marker's letter was written
    verdict_logprobs: tuple[float, float] | None = None
    forced: bool = False  # the sample ended without a verdict, which was then read after an appended marker


class Backend(Protocol):
    model_id: str  # stable id of the weights (name + fingerprint); part of the judge key

    def load(self) -> None: ...

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        """The full prompt text: chat template with a generation prompt, then the assistant prefix."""

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        """Full-vocabulary log-probs of the two choice tokens as the next token after each prompt."""

    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 choices: tuple[str, str], marker: str) -> list[list[Completion]]:
        """`n` sampled completions per prompt, in prompt order."""
