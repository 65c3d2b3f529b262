"""A GGUF file judged in process through llama.cpp (`pip install 'labeler[gguf]'`): `--model judge.gguf`, or
`--backend gguf` for the default model's GGUF. For a quantized model on a CPU llama.cpp is the fastest engine; no
server to start.

The prompt is rendered with the file's own chat template (the one llama.cpp's server uses), user text defused of
the model's control tokens. llama-cpp-python decodes one sequence at a time, so "batching" here is reusing the KV
cache of the longest prefix a prompt shares with the previous one (the system prompt, both orders' shared start)
where a verdict is read; a cot sample feeds its whole prompt, so its seed gives the same text whatever came before.

- direct: the log-softmax of the verdict position's full logits, at the two letters' tokens (as the transformers
  backend reads them, so no top-k cut).
- cot: the verdict rule of the other backends: each sample seeded by its own seed, decoded until a closed marker
  ends its line or `max_new_tokens`; the last complete marker decides, its letters' log-probs read at the letter;
  a sample without one is forced ("\\nVerdict: [[" appended, the letters read), unless `force_verdict` is off.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from labeler.errors import LabelerError
from labeler.extras import require
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds, defuse_special_tokens

FORCE_SUFFIX = "\nVerdict: "
N_CTX = 4096


class _Specials:
    """The control tokens' texts, where `defuse_special_tokens` looks for a tokenizer's special tokens."""

    def __init__(self, texts: list[str]):
        self.all_special_tokens = texts


class GGUFBackend:
    def __init__(self, model: str | Path | None = None, n_ctx: int = N_CTX, threads: int | None = None, **_: object):
        self.path = Path(model) if model else None
        self.n_ctx, self.threads = n_ctx, threads
        self.model_id = ""
        self.llm = None

    def load(self) -> None:
        if self.llm is not None:
            return
        require("gguf", "a .gguf judge in process")
        from llama_cpp import Llama

        from labeler.judge.backends.models import _sha256
        from labeler.judge.backends.weights import find_gguf

        path = self.path or find_gguf()
        if not path.is_file():
            raise LabelerError(f"--model {path}: no such GGUF file")
        threads = self.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
        try:
            self.llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=threads, n_threads_batch=threads,
                             logits_all=False, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise LabelerError(f"--model {path}: llama.cpp cannot load it ({e})") from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LabelerError(f"{path}: the GGUF file has no chat template to render the judge prompt with")
        self._template = template
        self._specials = _Specials(self._control_tokens())
        self.model_id = f"gguf:{path.stem}@{_sha256(path)[:12]}"

    def _control_tokens(self) -> list[str]:
        import llama_cpp

        vocab, out = self.llm._model.vocab, []
        for i in range(self.llm.n_vocab()):
            if llama_cpp.llama_vocab_is_control(vocab, i) or llama_cpp.llama_vocab_is_eog(vocab, i):
                piece = self.llm.detokenize([i], special=True).decode("utf-8", "replace")
                if len(piece) > 1:
                    out.append(piece)
        return out

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        messages = [{"role": "system", "content": defuse_special_tokens(self._specials, system)},
                    {"role": "user", "content": defuse_special_tokens(self._specials, user)}]
        eos = self.llm.detokenize([self.llm.token_eos()], special=True).decode("utf-8", "replace")
        bos = self.llm.detokenize([self.llm.token_bos()], special=True).decode("utf-8", "replace")
        formatter = Jinja2ChatFormatter(self._template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        return formatter(messages=messages).prompt + assistant_prefix

    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _choice_ids(self, choices: tuple[str, str]) -> list[int]:
        ids = [self.llm.tokenize(c.encode(), add_bos=False, special=False) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise LabelerError(f"verdict choices {choices} are not single tokens for this model")
        return [i[0] for i in ids]

    def _eval(self, tokens: list[int]) -> None:
        """Feed `tokens` after the longest prefix they share with what the KV cache holds."""
        if len(tokens) >= self.n_ctx:
            raise LabelerError(f"a judge prompt of {len(tokens)} tokens does not fit the context of {self.n_ctx}")
        held = self.llm.input_ids[: self.llm.n_tokens].tolist()
        shared = 0
        for a, b in zip(held, tokens[:-1]):  # the last token is always fed again: its logits are read
            if a != b:
                break
            shared += 1
        self.llm.n_tokens = shared
        self.llm.eval(tokens[shared:])

    def _next_logprobs(self, ids: list[int]) -> list[float]:
        import ctypes

        import torch

        n = self.llm.n_vocab()
        row = (ctypes.c_float * n).from_address(ctypes.addressof(self.llm._ctx.get_logits_ith(-1).contents))
        logprobs = torch.log_softmax(torch.frombuffer(row, dtype=torch.float32).double(), dim=0)
        return [float(logprobs[i]) for i in ids]

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        ids = self._choice_ids(choices)
        out = []
        for prompt in prompts:
            self._eval(self._tokens(prompt))
            out.append(tuple(self._next_logprobs(ids)))
        return out

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        ids = self._choice_ids(choices)
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        letter = re.escape(marker) + "(" + "|".join(map(re.escape, choices)) + ")"
        line_end = re.compile(letter + r"\]\][ \t]*[\r\n]")
        verdict = re.compile(letter + r"(\]\]|\]?$)")
        out = []
        for prompt, row in zip(prompts, seeds):
            out.append([self._sample(prompt, seed, params, ids, choices, marker, line_end, verdict) for seed in row])
        return out

    def _sample(self, prompt: str, seed: int, params: SamplingParams, ids: list[int], choices: tuple[str, str],
                marker: str, line_end: re.Pattern, verdict: re.Pattern) -> Completion:
        text = self._decode(prompt, seed, params, line_end)
        if params.on_sample:
            params.on_sample()
        found = list(verdict.finditer(text))
        if found:
            last = found[-1]
            self._eval(self._tokens(prompt + text[: last.start(1)]))
            closed = text if last.group(2) == "]]" else text[: last.end(1)] + "]]"
            return Completion(text=closed, verdict_logprobs=tuple(self._next_logprobs(ids)))
        if not params.force_verdict:
            return Completion(text=text)
        forced = text + FORCE_SUFFIX + marker
        self._eval(self._tokens(prompt + forced))
        la, lb = self._next_logprobs(ids)
        return Completion(text=f"{forced}{choices[0] if la >= lb else choices[1]}]]", verdict_logprobs=(la, lb),
                          forced=True)

    def _decode(self, prompt: str, seed: int, params: SamplingParams, line_end: re.Pattern) -> str:
        """One sample: up to `max_new_tokens`, cut where a closed marker ends its line."""
        self.llm.set_seed(seed % 2**31)
        # The whole prompt is fed again: logits computed after a reused prefix differ in the last bits, which is
        # enough for a seeded sample to part from the same seed's sample on a fresh cache.
        self.llm.reset()
        pieces: list[bytes] = []
        import llama_cpp

        vocab = self.llm._model.vocab
        for i, token in enumerate(self.llm.generate(self._tokens(prompt), temp=params.temperature, top_p=params.top_p,
                                                    top_k=0, min_p=0.0)):
            if llama_cpp.llama_vocab_is_eog(vocab, token) or i >= params.max_new_tokens:
                break
            pieces.append(self.llm.detokenize([token]))
            text = b"".join(pieces).decode("utf-8", "ignore")
            ended = line_end.search(text)
            if ended:
                return text[: ended.end()]
        return b"".join(pieces).decode("utf-8", "ignore")
