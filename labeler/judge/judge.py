"""Judge a batch of pairs in both orders, direct (verdict-token logits) or CoT (K sampled rationales)."""

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from labeler.judge.adaptive import WINDOW, orders_repeat, settled
from labeler.judge.aggregate import pool_cot, pool_direct
from labeler.judge.backends import Backend, SamplingParams
from labeler.judge.backends.base import sample_seed
from labeler.judge.backends.devices import key_fields
from labeler.judge.parse import parse_verdict
from labeler.judge.prompts import MODES, POSITIONS, prompt_template, render, to_original
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
    force_verdict: bool = True  # cot: a sample that ends without [[X]] gets its verdict read from the logits
    adaptive: bool = False  # cot: sample in rounds and stop a pair once more samples are unlikely to change it
    adaptive_round: int = 2  # samples per order per round
    adaptive_confidence: float = 0.95  # stop when the Beta posterior puts this much mass on one side
    template: str | None = None  # a judge template's jinja source (None: the shipped one for the mode)
    criteria: str | None = None  # what the judge is asked to prefer (None: the template's own wording)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.mode == "direct" and self.samples != 1:
            raise ValueError(f"direct mode reads one verdict per order; samples must be 1, got {self.samples}")
        if self.adaptive and (self.mode != "cot" or self.adaptive_round < 1 or not 0.5 < self.adaptive_confidence < 1):
            raise ValueError("adaptive voting needs mode 'cot', adaptive_round >= 1 and 0.5 < adaptive_confidence < 1")
        if not 0.0 < self.top_p <= 1.0 or not 0.0 < self.temperature < math.inf:  # also refuses nan
            raise ValueError(f"need 0 < top_p <= 1 and temperature > 0, got top_p={self.top_p}, temperature={self.temperature}")
        if self.max_new_tokens < 1 or self.max_field_chars < 1:
            raise ValueError(f"max_new_tokens and max_field_chars must be >= 1, got {self.max_new_tokens}, "
                             f"{self.max_field_chars}")
        prompt_template(self.mode, self.template, self.criteria)  # a template that cannot judge fails here, at start

    def batch_pairs(self, batch_size: int) -> int:
        """Pairs to judge together where `batch_size` is asked for. Adaptive voting's rounds draw `adaptive_round`
        samples per order where fixed K draws K at once, so it takes K / adaptive_round times the pairs to decode
        as many samples per step (a decode step's cost is mostly reading the weights, whatever the rows)."""
        return batch_size * -(-self.samples // self.adaptive_round) if self.adaptive else batch_size


class Judge:
    def __init__(self, backend: Backend, config: JudgeConfig):
        self.backend = backend
        self.config = config
        self.recipe = None  # how to build this judge again in another process (set by pipeline.build_judge)
        backend.load()
        self.prompt = prompt_template(config.mode, config.template, config.criteria)
        self.template_hash = self.prompt.hash  # covers the template and the criteria, so they are in the key
        options = {k: v for k, v in asdict(self.config).items() if k not in ("template", "criteria")}
        key = {"model": backend.model_id, "template": self.template_hash, **options}
        key.update(key_fields(getattr(backend, "device", "cpu"), getattr(backend, "dtype", "float32")))
        self.judge_key = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def judge_id(self) -> str:
        return self.backend.model_id

    def _prompts(self, pairs: list[Pair]) -> list[tuple[Pair, str, str]]:
        out = []
        for pair in pairs:
            for position in POSITIONS:
                r = render(self.config.mode, pair, position, self.config.max_field_chars, self.prompt)
                out.append((pair, position, self.backend.render_chat(r.system, r.user, r.assistant_prefix)))
        return out

    def judge(self, pairs: list[Pair], run_id: str,
              progress: Callable[[float], None] | None = None) -> tuple[list[Judgment], list[Sample]]:
        """Judge `pairs`; `progress(x)` is told of each finished cot sample as a share x of a pair."""
        if self.config.adaptive:
            given = iter([pairs])
            done = {pair.pair_id: out for group in self._adaptive(lambda n: next(given, []), len(pairs), progress)
                    for pair, out in group}
            finished = [(pair, done[pair.pair_id]) for pair in pairs]
        else:
            finished = self._fixed(pairs, progress)
        return self._judgments(finished, run_id)

    def stream(self, take: Callable[[int], list[Pair]], width: int, run_id: str,
               progress: Callable[[float], None] | None = None) -> Iterator[tuple[list[Judgment], list[Sample]]]:
        """Judge the pairs `take(n)` hands out (at most n at a time; [] once there are none), `width` pairs at a time,
        yielding the judgments of each group as it finishes. Adaptive voting keeps `width` pairs in flight: the
        place of a pair that stops early is taken by a new pair in the next round (continuous batching), so its
        later rounds decode as many samples per step as its first, where `judge` on a batch runs them on the
        undecided few."""
        if not self.config.adaptive:
            while batch := take(width):
                yield self.judge(batch, run_id, progress)
            return
        for group in self._adaptive(take, width, progress):
            yield self._judgments(group, run_id)

    def pairs_sampled(self, samples: list[Sample]) -> float:
        """How many pairs' worth of samples these are (the share `progress` is told of each)."""
        return len(samples) / (len(POSITIONS) * self.config.samples)

    def _judgments(self, finished: list[tuple[Pair, list[Sample]]], run_id: str) -> tuple[list[Judgment], list[Sample]]:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        return ([self._judgment(pair, samples, run_id, now) for pair, samples in finished],
                [s for _, samples in finished for s in samples])

    def _fixed(self, pairs: list[Pair], progress) -> list[tuple[Pair, list[Sample]]]:
        """Direct: one verdict per order; cot: K rationales per order, drawn together."""
        prompts = self._prompts(pairs)
        if self.config.mode == "direct":
            scores = self.backend.verdict_logprobs([text for _, _, text in prompts], CHOICES)
            samples = [self._sample(pair, position, 0, "", _direct_verdict(score), score)
                       for (pair, position, _), score in zip(prompts, scores)]
        else:
            k = self.config.samples
            samples = self._draw(prompts, {pair.pair_id: 0 for pair in pairs}, k, False, progress)
        by_pair: dict[str, list[Sample]] = {pair.pair_id: [] for pair in pairs}
        for sample in samples:
            by_pair[sample.pair_id].append(sample)
        return [(pair, by_pair[pair.pair_id]) for pair in pairs]

    def _draw(self, prompts: list[tuple[Pair, str, str]], used: dict[str, int], n: int, keep, progress) -> list[Sample]:
        """`n` rationales per prompt, numbered from its pair's `used`. Sample j of a pair's order is seeded by
        (seed, pair id, order, j) alone, so it is the same text whatever the batch, the round or the resume point.
        `keep` (per prompt): a later round may sample it again, so its prefill is kept."""
        c = self.config
        share = 1 / (len(POSITIONS) * c.samples)
        params = SamplingParams(c.max_new_tokens, c.temperature, c.top_p, c.seed, c.force_verdict,
                                on_sample=(lambda: progress(share)) if progress else None, keep_prompts=keep)
        seeds = [[sample_seed(c.seed, pair.pair_id, position, used[pair.pair_id] + j) for j in range(n)]
                 for pair, position, _ in prompts]
        completions = self.backend.generate([text for _, _, text in prompts], n, params, CHOICES, MARKER, seeds)
        return [self._sample(pair, position, used[pair.pair_id] + j, out.text, parse_verdict(out.text),
                             out.verdict_logprobs, out.forced)
                for (pair, position, _), outs in zip(prompts, completions) for j, out in enumerate(outs)]

    def _adaptive(self, take: Callable[[int], list[Pair]], width: int,
                  progress) -> Iterator[list[tuple[Pair, list[Sample]]]]:
        """Adaptive voting in rounds of `adaptive_round` samples per order over up to `width` pairs in flight,
        topped up from `take` before each round; yields the pairs each round finishes (judge/adaptive.py)."""
        k, step = self.config.samples, self.config.adaptive_round
        flying: dict[str, Pair] = {}
        prompts: dict[str, list[tuple[Pair, str, str]]] = {}
        used: dict[str, int] = {}
        got: dict[str, list[Sample]] = {}
        while True:
            for pair in take(width - len(flying)) if len(flying) < width else []:
                pid = pair.pair_id
                flying[pid], prompts[pid], used[pid], got[pid] = pair, self._prompts([pair]), 0, []
            if not flying:
                return
            rounds: dict[int, list[str]] = {}  # a pair's last round may be smaller than `step` (k - used < step)
            for pid in flying:
                rounds.setdefault(min(step, k - used[pid]), []).append(pid)
            for n, pids in rounds.items():
                batch = [item for pid in pids for item in prompts[pid]]
                keep = tuple(used[pair.pair_id] + n < k for pair, _, _ in batch)
                for sample in self._draw(batch, used, n, keep, progress):
                    got[sample.pair_id].append(sample)
                for pid in pids:
                    used[pid] += n
            done = [pid for n, pids in rounds.items() for pid in pids
                    if used[pid] >= k or self._stop(got[pid], used[pid], n)]
            stopped_early = [text for pid in done if used[pid] < k for _, _, text in prompts[pid]]
            if stopped_early and hasattr(self.backend, "forget"):
                self.backend.forget(stopped_early)  # their prefills were kept for rounds that will not come
            finished = [(flying.pop(pid), got.pop(pid)) for pid in done]
            for pid in done:
                del prompts[pid], used[pid]
            if finished:
                yield finished

    def _stop(self, samples: list[Sample], used: int, n: int) -> bool:
        """The adaptive stopping rule (judge/adaptive.py) after a round of `n` samples per order."""
        a, b = sum(s.verdict == "A" for s in samples), sum(s.verdict == "B" for s in samples)
        latest: dict[str, list[str | None]] = {}
        for s in samples:
            if s.sample_idx >= used - max(n, WINDOW):
                latest.setdefault(s.position, []).append(s.verdict)
        return settled(a, b, 2 * (self.config.samples - used), self.config.adaptive_confidence) or orders_repeat(latest)

    def _sample(self, pair: Pair, position: str, idx: int, text: str, seen: str | None,
                logprobs: tuple[float, float] | None, forced: bool = False) -> Sample:
        la, lb = logprobs if logprobs else (None, None)
        if position == "BA":
            la, lb = lb, la
        return Sample(pair_id=pair.pair_id, judge_key=self.judge_key, position=position, sample_idx=idx, text=text,
                      verdict=to_original(seen, position), logprob_a=la, logprob_b=lb, forced=forced)

    def _judgment(self, pair: Pair, samples: list[Sample], run_id: str, now: datetime) -> Judgment:
        pooled = pool_direct(samples) if self.config.mode == "direct" else pool_cot(samples)
        return Judgment(pair_id=pair.pair_id, judge_key=self.judge_key, judge_id=self.judge_id,
                        mode=self.config.mode, samples=self.config.samples, seed=self.config.seed,
                        template_hash=self.template_hash, run_id=run_id, created_at=now, **vars(pooled))


def _direct_verdict(score: tuple[float, float] | None) -> str | None:
    """The letter the judge put more mass on; None where it saw neither letter (a server's top log-probs) or both
    equally: an undecided order, as in cot."""
    if score is None or score[0] == score[1]:
        return None
    return "A" if score[0] > score[1] else "B"
