"""The backend protocol every judge backend implements (transformers, openai, vllm, reward, fake)."""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

WORD_JOINER = "\u2060"  # invisible; splits a special-token string so the tokenizer reads it as text


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0
    force_verdict: bool = True  # a sample without a verdict gets one read from the logits; False = it abstains
    on_sample: Callable[[], None] | None = field(default=None, compare=False)  # called as each sample finishes
    # later calls will sample these prompts again (adaptive rounds): keep their prefills; one flag, or one per prompt
    keep_prompts: bool | tuple[bool, ...] = False


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

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        """`n` sampled completions per prompt, in prompt order. `seeds[i][j]` seeds prompt i's sample j alone
        (default: derived from `params.seed`, the prompt's index and j)."""


def sample_seed(*key: object) -> int:
    """A 63-bit seed from any key, e.g. (run seed, pair id, order, sample index)."""
    return int.from_bytes(hashlib.sha256(repr(key).encode()).digest()[:8], "big") >> 1


def default_seeds(seed: int, prompts: int, n: int) -> list[list[int]]:
    return [[sample_seed(seed, i, j) for j in range(n)] for i in range(prompts)]


def defuse_special_tokens(tokenizer, text: str) -> str:
    """`text` with each special-token string of `tokenizer` (`<|im_start|>`, ...) broken after its first character,
    so user text is encoded as text and can never open or close a turn of the judge's prompt."""
    specials = set(getattr(tokenizer, "all_special_tokens", []))
    specials |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    specials = sorted((t for t in specials if len(t) > 1), key=len, reverse=True)
    if not specials:
        return text
    pattern = re.compile("|".join(map(re.escape, specials)))
    return pattern.sub(lambda m: m.group(0)[0] + WORD_JOINER + m.group(0)[1:], text)
