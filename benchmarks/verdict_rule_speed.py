"""Side by side on the same pairs: the cot sampler under the one verdict rule (a sample runs to EOS, its token
limit, or a closed marker ending its line; the last complete marker decides) against the rule it replaced (stop at
the first letter written after "[["), each twice, alternating, with pairs/s, mean sample length and forced share.

    .venv/bin/python benchmarks/verdict_rule_speed.py 2 4      # pairs of prefs/hh_helpful.jsonl, K
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from judge_speed import labelled_pairs
from labeler.judge.backends import make_backend
from labeler.judge.backends.transformers import chains
from labeler.judge.judge import Judge, JudgeConfig

pairs, gold = labelled_pairs(Path(__file__).resolve().parents[2] / "shared" / "data" / "prefs" / "hh_helpful.jsonl", int(sys.argv[1]))
k = int(sys.argv[2])
backend = make_backend("transformers", batch_size=8)
backend.load()
new_read = chains.ChainSampler._read

def old_read(self, chain, token, logprobs):  # stop at the first letter written right after the marker
    if token in self.choice_ids and self._marker_before(chain.tokens[:-1]) and chain.verdict is None:
        chain.verdict = self.choice_ids.index(token)
        chain.logprobs = (float(logprobs[self.choice_ids[0]]), float(logprobs[self.choice_ids[1]]))
        chain.done = True

for name, read in (("old: first [[X stops", old_read), ("one rule", new_read), ("old again", old_read), ("one rule again", new_read)):
    chains.ChainSampler._read = read
    backend._samplers.clear()
    judge = Judge(backend, JudgeConfig(mode="cot", samples=k, seed=1))
    t = time.perf_counter()
    js, ss = judge.judge(pairs, "bench")
    dt = time.perf_counter() - t
    lens = [len(s.text) for s in ss]
    print(f"{name:<22} {len(pairs) / dt:.4f} pairs/s  mean chars {statistics.mean(lens):.0f}  forced {sum(s.forced for s in ss) / len(ss):.2f}", flush=True)
