"""Judge a batch of pairs in both orders, direct (verdict-token logits) or CoT (K sampled rationales)."""

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from labeler.judge.aggregate import pool_cot, pool_direct
from labeler.judge.backends import Backend, SamplingParams
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import MODES, POSITIONS, render, template_hash, to_original
from schemas import Judgment, Pair, Sample

CHOICES = ("A", "B")
MARKER = "[["


@dataclass(frozen=True)
class JudgeConfig:
    """How a pair is judged. Every field is part of the judge key, so changing one re-labels."""

    mode: str = "direct"
    samples: int = 1
    seed: int = 0
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 0.95
    max_field_chars: int = 6000

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.mode == "direct" and self.samples != 1:
            raise ValueError(f"direct mode reads one verdict per order; samples must be 1, got {self.samples}")
        if not 0.0 < self.top_p <= 1.0 or self.temperature <= 0.0:
            raise ValueError(f"need 0 < top_p <= 1 and temperature > 0, got top_p={self.top_p}, temperature={self.temperature}")


class Judge:
    def __init__(self, backend: Backend, config: JudgeConfig):
        self.backend = backend
        self.config = config
        backend.load()
        self.template_hash = template_hash(config.mode)
        key = {"model": backend.model_id, "template": self.template_hash, **asdict(self.config)}
        self.judge_key = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def judge_id(self) -> str:
        return self.backend.model_id

    def _prompts(self, pairs: list[Pair]) -> list[tuple[Pair, str, str]]:
        out = []
        for pair in pairs:
            for position in POSITIONS:
                r = render(self.config.mode, pair, position, self.config.max_field_chars)
                out.append((pair, position, self.backend.render_chat(r.system, r.user, r.assistant_prefix)))
        return out

    def judge(self, pairs: list[Pair], run_id: str) -> tuple[list[Judgment], list[Sample]]:
        prompts = self._prompts(pairs)
        texts = [p for _, _, p in prompts]
        samples: list[Sample] = []
        if self.config.mode == "direct":
            for (pair, position, _), (la, lb) in zip(prompts, self.backend.verdict_logprobs(texts, CHOICES)):
                samples.append(self._sample(pair, position, 0, "", "A" if la >= lb else "B", (la, lb)))
        else:
            params = SamplingParams(self.config.max_new_tokens, self.config.temperature, self.config.top_p,
                                    self._batch_seed(pairs))
            completions = self.backend.generate(texts, self.config.samples, params, CHOICES, MARKER)
            for (pair, position, _), outs in zip(prompts, completions):
                for idx, c in enumerate(outs):
                    samples.append(self._sample(pair, position, idx, c.text, parse_verdict(c.text), c.verdict_logprobs))
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        judgments = [self._judgment(pair, [s for s in samples if s.pair_id == pair.pair_id], run_id, now) for pair in pairs]
        return judgments, samples

    def _batch_seed(self, pairs: list[Pair]) -> int:
        """Seed from the run seed and the batch's pair ids: the same batch always draws the same samples."""
        digest = hashlib.sha256(f"{self.config.seed}:{','.join(p.pair_id for p in pairs)}".encode()).digest()
        return int.from_bytes(digest[:4], "big")

    def _sample(self, pair: Pair, position: str, idx: int, text: str, seen: str | None,
                logprobs: tuple[float, float] | None) -> Sample:
        la, lb = logprobs if logprobs else (None, None)
        if position == "BA":
            la, lb = lb, la
        return Sample(pair_id=pair.pair_id, judge_key=self.judge_key, position=position, sample_idx=idx, text=text,
                      verdict=to_original(seen, position), logprob_a=la, logprob_b=lb)

    def _judgment(self, pair: Pair, samples: list[Sample], run_id: str, now: datetime) -> Judgment:
        pooled = pool_direct(samples) if self.config.mode == "direct" else pool_cot(samples)
        return Judgment(pair_id=pair.pair_id, judge_key=self.judge_key, judge_id=self.judge_id,
                        mode=self.config.mode, samples=self.config.samples, seed=self.config.seed,
                        template_hash=self.template_hash, run_id=run_id, created_at=now, **vars(pooled))
