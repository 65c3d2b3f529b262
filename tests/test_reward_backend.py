"""The reward (Bradley-Terry) backend on a tiny random Llama with a scalar head."""

from labeler.judge.backends import make_backend
from labeler.judge.judge import JudgeConfig
from labeler.judge.reward import RewardJudge
from schemas import Pair


def test_each_response_is_scored_once_for_both_orders(reward_dir):
    backend = make_backend("reward", model=str(reward_dir), batch_size=3)
    judge = RewardJudge(backend, JudgeConfig())
    rows = []
    backend.model.register_forward_hook(lambda module, args, out: rows.append(out.logits.shape[0]))
    pairs = [Pair(pair_id=f"p{i}", prompt=f"question {i}", response_a="yes " * (i + 1), response_b="no") for i in range(4)]
    judgments, samples = judge.judge(pairs, "r")
    assert sum(rows) == 8  # 4 pairs x 2 responses, not x 2 orders
    alone = backend.rewards(_texts(backend, pairs[0]))
    both = backend.rewards(_texts(backend, pairs[0]) * 2)
    assert both == alone * 2
    for j in judgments:  # both orders agree by construction
        assert j.order_consistent and 0.0 < j.p_a < 1.0


def _texts(backend, pair):
    import json

    return json.loads(backend.render_pair(pair, "AB", 6000))
