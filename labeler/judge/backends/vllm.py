"""vLLM backend (`pip install 'labeler[vllm]'`, needs a GPU). Never imported on the CPU path.

Written to vLLM's documented offline API (`LLM.generate(prompts, [SamplingParams, ...])`) with automatic
prefix caching, so the samples and the two orders of a pair share their prompt's KV cache instead of
re-encoding it. The rules match the transformers backend: each sample is its own request with its own seed
(so it is the same text whatever the batch), it runs to its end or to a marker that ends its line (stop strings
"[[A]]\n", "[[B]]\n"), its last complete marker (`[[` + letter token + `]]`) is its verdict with the two letters'
log-probs at that token, and a sample without one is forced: the marker is appended and the two letters'
log-probs read.
"""

import math
from pathlib import Path

from labeler.errors import LabelerError
from labeler.extras import require
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds, defuse_special_tokens
from labeler.judge.backends.models import check_model_dir, model_fingerprint, resolve_model

FORCE_SUFFIX = "\nVerdict: "
TOP_LOGPROBS = 20


class VLLMBackend:
    def __init__(self, model: str | Path | None = None, gpu_memory_utilization: float = 0.85, **_: object):
        self.path = model or None
        self.gpu_memory_utilization = gpu_memory_utilization
        self.model_id = ""
        self.llm = None

    def load(self) -> None:
        if self.llm is not None:
            return
        require("vllm", "the vllm backend (and a GPU)")
        import vllm

        path, name = resolve_model(self.path)
        check_model_dir(path)
        self.model_id = f"{name}@{model_fingerprint(path)}"
        self._vllm = vllm
        self.llm = vllm.LLM(model=str(path), enable_prefix_caching=True, trust_remote_code=False,
                            gpu_memory_utilization=self.gpu_memory_utilization)
        self.tokenizer = self.llm.get_tokenizer()

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": defuse_special_tokens(self.tokenizer, system)},
                    {"role": "user", "content": defuse_special_tokens(self.tokenizer, user)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + assistant_prefix

    def _ids(self, choices: tuple[str, str]) -> list[int]:
        ids = [self.tokenizer.encode(c, add_special_tokens=False) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise LabelerError(f"verdict choices {choices} are not single tokens for this tokenizer")
        return [i[0] for i in ids]

    def _read_next(self, prompts: list[str], ids: list[int]) -> list[tuple[float, float]]:
        """Log-probs of the two choice tokens as the next token (from the top log-probs vLLM returns)."""
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=TOP_LOGPROBS)
        out = []
        for output in self.llm.generate(prompts, params, use_tqdm=False):
            top = output.outputs[0].logprobs[0]
            out.append(tuple(top[i].logprob if i in top else -math.inf for i in ids))
        return out

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        return self._read_next(prompts, self._ids(choices))

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        ids = self._ids(choices)
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        requests = [(prompt, seed) for prompt, row in zip(prompts, seeds) for seed in row]
        sampling = [self._vllm.SamplingParams(
            n=1, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_new_tokens, seed=seed,
            logprobs=TOP_LOGPROBS, stop=[f"{marker}{c}]]\n" for c in choices], include_stop_str_in_output=True)
            for _, seed in requests]
        outputs = self.llm.generate([prompt for prompt, _ in requests], sampling, use_tqdm=False)
        completions = [self._completion(output.outputs[0], ids, marker) for output in outputs]
        unfinished = [i for i, c in enumerate(completions) if c.verdict_logprobs is None]
        if params.force_verdict and unfinished:
            forced = [requests[i][0] + completions[i].text + FORCE_SUFFIX + marker for i in unfinished]
            for i, (la, lb) in zip(unfinished, self._read_next(forced, ids)):
                letter = choices[0] if la >= lb else choices[1]
                text = f"{completions[i].text}{FORCE_SUFFIX}{marker}{letter}]]"
                completions[i] = Completion(text=text, verdict_logprobs=(la, lb), forced=True)
        return [completions[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _completion(self, out, ids: list[int], marker: str) -> Completion:
        """The sample's last complete marker: `marker` before a letter token and "]]" right after it (or the end)."""
        tokens = list(out.token_ids)
        for i in reversed(range(len(tokens))):
            if tokens[i] not in ids or not out.logprobs:
                continue
            before = self.tokenizer.decode(tokens[:i]).rstrip()
            after = self.tokenizer.decode(tokens[i + 1:]).lstrip(" ")
            if before.endswith(marker) and (after.startswith("]]") or "]]".startswith(after)):
                top = out.logprobs[i]
                text = out.text if after.startswith("]]") else out.text.rstrip("]") + "]]"
                return Completion(text=text, verdict_logprobs=tuple(top[t].logprob if t in top else -math.inf
                                                                    for t in ids))
        return Completion(text=out.text)
