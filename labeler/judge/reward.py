"""A Bradley-Terry judge (`labeler retrain --method bt`): the pair goes to a reward model
(`backends.reward.RewardBackend`) instead of a GenRM prompt; direct mode only."""

from labeler.errors import LabelerError
from labeler.judge.backends.reward import RewardBackend
from labeler.judge.judge import Judge
from labeler.judge.prompts import POSITIONS, shorten
from schemas import Pair


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

    def score_responses(self, groups: list[tuple[str, list[str]]]) -> list[list[tuple[float, float | None]]]:
        """For each (prompt, responses), the (reward, spread) of each response, each read once: N forward passes per
        prompt, not N(N-1)/2 pairs. The spread is the disagreement of the judge's ensemble where the backend has one
        (`reward_spreads(texts) -> [(reward, spread)]`), else None."""
        from labeler.judge.backends.reward import bt_text

        limit = self.config.max_field_chars
        texts = [bt_text(self.backend.tokenizer, shorten(prompt, limit), shorten(r, limit))
                 for prompt, responses in groups for r in responses]
        with_spread = getattr(self.backend, "reward_spreads", None)
        flat = (with_spread(texts) if with_spread is not None
                else [(r, None) for r in self.backend.rewards(texts)])
        out, start = [], 0
        for _, responses in groups:
            out.append([(float(r), None if s is None else float(s)) for r, s in flat[start:start + len(responses)]])
            start += len(responses)
        return out
