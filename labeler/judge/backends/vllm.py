"""vLLM backend (`pip install 'labeler[vllm]'`, needs a GPU). Never imported on the CPU path.

Written to vLLM's documented offline API: `LLM.generate(prompts, SamplingParams(n=K, ...))` with automatic
prefix caching, so the K samples and the two orders of a pair share their common prompt prefix.
"""

import math
from pathlib import Path

from labeler.errors import LabelerError
from labeler.judge.backends.base import Completion, SamplingParams
from labeler.judge.default_model import check_model_dir, default_model_dir, model_fingerprint
from labeler.judge.parse import MARKER


class VLLMBackend:
    def __init__(self, model: str | Path | None = None, gpu_memory_utilization: float = 0.85, **_: object):
        self.path = Path(model) if model else None
        self.gpu_memory_utilization = gpu_memory_utilization
        self.model_id = ""
        self.llm = None

    def load(self) -> None:
        try:
            import vllm
        except ImportError:
            raise LabelerError("the vllm backend needs vLLM and a GPU: pip install 'labeler[vllm]'") from None
        path = self.path or default_model_dir()
        check_model_dir(path)
        self.model_id = f"{path.name}@{model_fingerprint(path)}"
        self._vllm = vllm
        self.llm = vllm.LLM(model=str(path), enable_prefix_caching=True, trust_remote_code=False,
                            gpu_memory_utilization=self.gpu_memory_utilization)
        self.tokenizer = self.llm.get_tokenizer()

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + assistant_prefix

    def _ids(self, choices: tuple[str, str]) -> list[int]:
        return [self.tokenizer.encode(c, add_special_tokens=False)[0] for c in choices]

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        ids = self._ids(choices)
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=20)
        results = []
        for output in self.llm.generate(prompts, params, use_tqdm=False):
            top = output.outputs[0].logprobs[0]  # dict token_id -> Logprob, top-20 of the raw distribution
            results.append(tuple(top[i].logprob if i in top else -math.inf for i in ids))
        return results

    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 choices: tuple[str, str], marker: str) -> list[list[Completion]]:
        ids = self._ids(choices)
        sampling = self._vllm.SamplingParams(n=n, temperature=params.temperature, top_p=params.top_p,
                                             max_tokens=params.max_new_tokens, seed=params.seed, logprobs=20)
        results = []
        for output in self.llm.generate(prompts, sampling, use_tqdm=False):
            results.append([self._completion(c, ids, marker) for c in output.outputs])
        return results

    def _completion(self, out, ids: list[int], marker: str) -> Completion:
        found = list(MARKER.finditer(out.text))
        if not found or not out.logprobs:
            return Completion(text=out.text)
        for j in range(len(out.token_ids) - 1, -1, -1):
            if out.token_ids[j] in ids:
                top = out.logprobs[j]
                return Completion(text=out.text, verdict_logprobs=tuple(
                    top[i].logprob if i in top else -math.inf for i in ids))
        return Completion(text=out.text)
