"""The judge over an OpenAI-compatible chat endpoint (`--backend openai --api chat`, `POST {base_url}/chat/completions`):
hosted APIs (OpenAI, Together, Groq, Fireworks), vLLM's and SGLang's servers, Ollama, llama.cpp. The server applies
its own chat template, so no local tokenizer is needed; a chat turn cannot be continued, so the prompt asks for
what the assistant prefix would have made the model write.

- direct: the judge prompt ends by asking for the verdict letter alone; `max_tokens=1`, `temperature=0`,
  `logprobs=true`, `top_logprobs=20`; P(A) from the first token's top log-probs, each letter summed over its
  spellings (" A", "a", ...) and renormalised over the two (AlpacaEval's weighted judge reads verdicts so). Neither
  letter shown: that order abstains. A server without log-probs: one LabelerError (cot still works).
- cot: the template and verdict rule of the other backends (the last "[[X]]" closing its line decides). `n` samples
  in one request (seeded by the prompt's first sample seed); a server that answers with fewer choices (llama.cpp
  ignores `n`) gets the rest one request per sample with the sample's own seed, and is asked so from then on. The
  letter's log-probs are read from the sample's own token log-probs. A sample without a verdict is asked for it in
  one more turn (`max_tokens=1`), unless `force_verdict` is off.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor

from labeler.errors import LabelerError
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds
from labeler.judge.backends.openai_client import (TOP_LOGPROBS, Client, NoLogprobs, endpoint, letter, letter_logprobs,
                                                  top_pairs)

DIRECT_ASK = '\n\nReply with one letter only, "A" or "B", without brackets or any other text.'
FORCE_ASK = 'Your final verdict: reply with one letter only, "A" or "B".'
FORCE_SUFFIX = "\nVerdict: "
SAMPLE_TOP_LOGPROBS = 5
SEED_RANGE = 2**31
CHARS_PER_TOKEN = 4  # the estimate without --tokenizer: OpenAI's rule of thumb for English text
TOKENS_PER_MESSAGE = 4  # role and separators a chat template adds per message, roughly


class ChatBackend:
    def __init__(self, model: str | None = None, base_url: str | None = None, tokenizer: str | None = None,
                 concurrency: int = 8, timeout_s: float = 600.0, max_requests: int | None = None,
                 confirm=None, transport=None,
                 retries: int | None = None, **_: object):
        self.where = endpoint(base_url, model)
        self.confirm = confirm  # shown the cost estimate before a run against a non-local address; False stops it
        if concurrency < 1:
            raise LabelerError(f"--concurrency must be >= 1, got {concurrency}")
        self.model, self.base_url, self.tokenizer_name = self.where.model, self.where.base_url, tokenizer
        self.concurrency, self.timeout_s, self.max_requests, self.transport = concurrency, timeout_s, max_requests, transport
        self.retries = retries
        asked = hashlib.sha256(f"{DIRECT_ASK}\0{FORCE_ASK}".encode()).hexdigest()[:8]
        # the served name, the server, and the wording this backend adds to the judge template
        self.model_id = f"openai:{self.model}@{self.where.host}/chat:{asked}"
        self.multi_n: bool | None = None  # does the server honour `n`? (None: not seen yet)
        self.tokenizer = None
        self.client: Client | None = None

    @property
    def is_local(self) -> bool:
        return self.where.is_local

    def load(self) -> None:
        if self.client is not None:
            return
        options = {} if self.retries is None else {"retries": self.retries}
        self.client = Client(self.where, self.timeout_s, self.concurrency, max_requests=self.max_requests,
                             transport=self.transport, **options)
        if self.tokenizer_name:  # only to count prompt tokens for the cost estimate
            from transformers import AutoTokenizer

            from labeler.judge.backends.models import resolve_model

            path, _ = resolve_model(None if self.tokenizer_name == "default" else self.tokenizer_name)
            self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        """The messages, as JSON text (the protocol passes prompts as strings); a prefix that would have led the
        model to the verdict letter (the direct template's "Verdict: [[") becomes a request for the letter alone."""
        if assistant_prefix.rstrip().endswith("[["):
            user += DIRECT_ASK
        return json.dumps([{"role": "system", "content": system}, {"role": "user", "content": user}])

    def prompt_tokens(self, prompt: str) -> int:
        messages = json.loads(prompt)
        if self.tokenizer is not None and self.tokenizer.chat_template:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return sum(len(m["content"]) // CHARS_PER_TOKEN + TOKENS_PER_MESSAGE for m in messages)

    def requests_per_prompt(self, mode: str, samples: int) -> int:
        """An upper bound on one order's requests: direct 1; cot one per sample, one more per sample whose verdict
        must be asked for."""
        return 1 if mode == "direct" else 2 * samples

    def _map(self, fn, items: list) -> list:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    # ---- direct ---------------------------------------------------------------------------------------------------
    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float] | None]:
        """Per prompt the two letters' log-probs, or None where the top log-probs show neither letter."""
        first = [self._read_letter(json.loads(prompts[0]), choices)] if prompts else []
        return first + self._map(lambda p: self._read_letter(json.loads(p), choices), prompts[1:])

    def _read_letter(self, messages: list[dict], choices: tuple[str, str]) -> tuple[float, float] | None:
        body = {"messages": messages, "max_tokens": 1, "temperature": 0.0, "logprobs": True,
                "top_logprobs": TOP_LOGPROBS}
        try:
            answer = self.client.chat(**body)
        except NoLogprobs as e:
            raise LabelerError(f"{e}: direct mode reads the verdict from log-probs; use --mode cot, or a server "
                               "that returns them") from None
        tokens = _token_logprobs(self.base_url, answer["choices"][0])
        if not tokens:
            raise LabelerError(f"{self.base_url} returns no log-probs, which direct mode reads the verdict from: use "
                               "--mode cot, or a server that returns logprobs (vllm serve, llama.cpp's server)")
        return letter_logprobs(tokens[0][1], choices)

    # ---- cot ------------------------------------------------------------------------------------------------------
    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        messages = [json.loads(p) for p in prompts]
        got: list[list[dict]] = self._map(lambda i: self._sample(messages[i], params, seeds[i][0], n), range(len(prompts)))
        if any(len(row) < n for row in got):
            self.multi_n = False if n > 1 else self.multi_n
            missing = [(i, j) for i, row in enumerate(got) for j in range(len(row), n)]
            extra = self._map(lambda ij: self._sample(messages[ij[0]], params, seeds[ij[0]][ij[1]], 1)[0], missing)
            for (i, _), choice in zip(missing, extra):
                got[i].append(choice)
        elif n > 1:
            self.multi_n = True
        jobs = [(i, choice) for i, row in enumerate(got) for choice in row[:n]]
        done = self._map(lambda job: self._completion(messages[job[0]], job[1], params, choices, marker), jobs)
        return [done[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _sample(self, messages: list[dict], params: SamplingParams, seed: int, n: int) -> list[dict]:
        """Up to `n` choices from one request (one when the server is known to ignore `n`)."""
        n = 1 if self.multi_n is False else n
        body = {"messages": messages, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "seed": seed % SEED_RANGE, "logprobs": True, "top_logprobs": SAMPLE_TOP_LOGPROBS}
        if n > 1:
            body["n"] = n
        try:
            return self.client.chat(**body)["choices"]
        except NoLogprobs:  # cot votes without log-probs
            body = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
            return self.client.chat(**body)["choices"]

    def _completion(self, messages: list[dict], choice: dict, params: SamplingParams, choices: tuple[str, str],
                    marker: str) -> Completion:
        text = _content(self.base_url, choice)
        tokens = _token_logprobs(self.base_url, choice) or []
        pattern = re.escape(marker) + "(" + "|".join(map(re.escape, choices)) + ")"
        ended = re.search(pattern + r"\]\][ \t]*[\r\n]", text)
        if ended:  # where the local sampler would have stopped
            text = text[: ended.end()]
        found = list(re.finditer(pattern + r"(\]\]|\]?$)", text))
        if params.on_sample:
            params.on_sample()
        if found:
            last = found[-1]
            closed = text if last.group(2) == "]]" else text[: last.end(1)] + "]]"
            return Completion(text=closed, verdict_logprobs=_logprobs_at(tokens, last.start(1), choices))
        if not params.force_verdict:
            return Completion(text=text)
        return self._force(messages, text, choices, marker)

    def _force(self, messages: list[dict], text: str, choices: tuple[str, str], marker: str) -> Completion:
        """Ask for the verdict a sample did not write, in one more turn."""
        asked = [*messages, {"role": "assistant", "content": text}, {"role": "user", "content": FORCE_ASK}]
        body = {"messages": asked, "max_tokens": 1, "temperature": 0.0}
        try:
            answer = self.client.chat(**body, logprobs=True, top_logprobs=TOP_LOGPROBS)["choices"][0]
        except NoLogprobs:
            answer = self.client.chat(**body)["choices"][0]
        tokens = _token_logprobs(self.base_url, answer)
        logprobs = letter_logprobs(tokens[0][1], choices) if tokens else None
        if logprobs is not None and logprobs[0] != logprobs[1]:
            seen = choices[0] if logprobs[0] > logprobs[1] else choices[1]
        else:
            seen = letter(_content(self.base_url, answer), choices)
        if seen is None:
            return Completion(text=text)
        return Completion(text=f"{text}{FORCE_SUFFIX}{marker}{seen}]]", verdict_logprobs=logprobs, forced=True)


def _content(url: str, choice: dict) -> str:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise LabelerError(f"{url}/chat/completions: choices[].message.content is {type(content).__name__}, not text")
    return content


def _token_logprobs(url: str, choice: dict) -> list[tuple[str, list[tuple[str, float]]]]:
    """[(token, its top log-probs)] of a chat choice; [] when the server sent none."""
    where = f"{url}/chat/completions: choices[].logprobs"
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return []
    if not isinstance(logprobs, dict):
        raise LabelerError(f"{where} is {type(logprobs).__name__} {str(logprobs)[:60]!r}, not an object")
    content = logprobs.get("content")
    if content is None:
        return []
    if not isinstance(content, list) or not all(isinstance(t, dict) for t in content):
        raise LabelerError(f"{where}.content is {type(content).__name__}, not a list of tokens")
    out = []
    for i, token in enumerate(content):
        text = token.get("token")
        if not isinstance(text, str):
            raise LabelerError(f"{where}.content[{i}].token is {type(text).__name__}, not text")
        out.append((text, top_pairs(f"{where}.content[{i}].top_logprobs", token.get("top_logprobs") or [])))
    return out


def _logprobs_at(tokens: list[tuple[str, list]], offset: int, choices: tuple[str, str]) -> tuple[float, float] | None:
    """The letters' log-probs at the token holding character `offset` of the text the tokens spell (None: the
    tokens do not reach it, or show neither letter)."""
    seen = 0
    for text, top in tokens:
        if seen <= offset < seen + len(text):
            return letter_logprobs(top, choices) if top else None
        seen += len(text)
    return None
