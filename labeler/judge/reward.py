"""A Bradley-Terry judge (`labeler retrain --method bt` or `bt-probe`): the pair goes to a reward model
(`backends.reward.RewardBackend`) instead of a GenRM prompt; direct mode only."""

from datetime import datetime

from labeler.errors import LabelerError
from labeler.judge.backends.reward import RewardBackend, Strength
from labeler.judge.judge import Judge
from labeler.judge.prompts import POSITIONS
from schemas import Judgment, Pair, Sample


class RewardJudge(Judge):
    """Direct judging with a reward model: both orders are scored (they agree by construction)."""

    def __init__(self, backend: RewardBackend, config):
        if config.mode != "direct":
            raise LabelerError(f"a Bradley-Terry judge scores responses and writes no rationale; use --mode direct (got "
                               f"--mode {config.mode}), or a generative judge for rationales (--judge base, or a "
                               "version trained with genrm-sft or star-*)")
        if config.template is not None or config.criteria is not None:
            raise LabelerError("a Bradley-Terry judge reads no judge prompt; --template and --criteria need a generative "
                               "judge (--judge base, or a version trained with genrm-sft or star-*)")
        super().__init__(backend, config)

    def _prompts(self, pairs: list[Pair]) -> list[tuple[Pair, str, str]]:
        return [(pair, position, self.backend.render_pair(pair, position, self.config.max_field_chars))
                for pair in pairs for position in POSITIONS]

    def _judgment(self, pair: Pair, samples: list[Sample], run_id: str, now: datetime) -> Judgment:
        judgment = super()._judgment(pair, samples, run_id, now)
        read = [self.backend.strengths.pop(self.backend.render_pair(pair, p, self.config.max_field_chars), None)
                for p in POSITIONS]
        if read[0] is None:  # judged elsewhere (e.g. on Ray): the samples carry the verdict, not the rewards
            return judgment
        strength = read[0]
        return judgment.model_copy(update={"margin": strength.mean, "margin_sd": strength.spread,
                                           "rationale": reward_rationale(strength, judgment.label, judgment.p_a)})


def reward_rationale(s: Strength, label: str | None, p_a: float | None) -> str:
    """What a reward judge computed, in words that agree with its label (it reads no verdict tokens)."""
    heads = f" (the mean of {s.members} heads; spread of the difference over them {s.spread:.3f})" if s.members > 1 else ""
    verdict = "neither is better (equal rewards)" if label is None else f"response {label} is better"
    return (f"Reward judge: reward(A) = {s.reward_first:.3f}, reward(B) = {s.reward_second:.3f}, difference "
            f"{s.mean:+.3f}{heads}; {verdict}, P(A) = {p_a:.3f}.")
