"""A deterministic canned backend for fast unit tests. Never used by default.

Its verdicts are a pure function of the prompt text, so runs are reproducible and resumable.
`LABELER_FAKE_DELAY` (seconds per call) lets tests kill a run mid-way.
"""

import hashlib
import math
import os
import time

from labeler.judge.backends.base import Completion, SamplingParams, default_seeds


def _unit(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FakeBackend:
    def __init__(self, model: str | None = None, abstain_rate: float = 0.1, **_: object):
        self.model_id = f"fake:{model or 'default'}"
        self.abstain_rate = abstain_rate
        self.calls = 0

    def load(self) -> None:
        pass

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        return f"<system>{system}</system><user>{user}</user><assistant>{assistant_prefix}"

    def _delay(self) -> None:
        self.calls += 1
        delay = float(os.environ.get("LABELER_FAKE_DELAY", "0"))
        if delay:
            time.sleep(delay)

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        self._delay()
        out = []
        for prompt in prompts:
            p = min(max(_unit(prompt), 0.01), 0.99)
            out.append((math.log(p), math.log(1 - p)))
        return out

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        self._delay()
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        results = []
        for prompt, row in zip(prompts, seeds):
            p = min(max(_unit(prompt), 0.05), 0.95)
            samples = []
            for i, seed in enumerate(row):
                letter = choices[0] if _unit(prompt, seed) < p else choices[1]
                logprobs = (math.log(p), math.log(1 - p))
                if _unit(prompt, "abstain", seed) >= self.abstain_rate:
                    text = f"Sample {i}: weighing both responses, {letter} is better.\n{marker}{letter}]]"
                    samples.append(Completion(text=text, verdict_logprobs=logprobs))
                elif params.force_verdict:
                    text = f"Sample {i}: I cannot decide.\nVerdict: {marker}{letter}]]"
                    samples.append(Completion(text=text, verdict_logprobs=logprobs, forced=True))
                else:
                    samples.append(Completion(text=f"Sample {i}: I cannot decide."))
                if params.on_sample:
                    params.on_sample()
            results.append(samples)
        return results
