"""A Bradley-Terry judge (`labeler retrain --method bt`): the pair goes to a reward model
(`backends.reward.RewardBackend`) instead of a GenRM prompt; direct mode only."""

from labeler.errors import LabelerError
from labeler.judge.backends.reward import RewardBackend
from labeler.judge.judge import Judge
from labeler.judge.prompts import POSITIONS
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
