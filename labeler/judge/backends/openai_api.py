"""The judge against any OpenAI-compatible server (`--backend openai --base-url URL --model NAME`): `vllm serve`,
llama.cpp's server, llama-cpp-python's server, Ollama, a hosted endpoint. `--api chat` (the default without
`--tokenizer`) speaks the chat endpoint (openai_chat.py); `--api completions` (the default with one) is this module.

With `--api completions` the prompt is rendered here, with the chat template of a local Hugging Face tokenizer (`--tokenizer`, else `--model`
when it resolves locally), and sent as text to the completions endpoint (`POST {base_url}/completions`): a chat
endpoint cannot continue an assistant turn, and direct mode needs the prompt to end in the prefix "Verdict: [[".

- direct: one request per prompt, `max_tokens=1`, `temperature=0`, `logprobs=20`; the verdict is read from the
  `top_logprobs` of that token (a letter outside the top 20 gets the 20th's log-prob, an upper bound). A server
  that returns no log-probs cannot judge in direct mode: that is a LabelerError, not a guess.
- cot: one request per sample (servers such as llama.cpp ignore `n`) with the sample's own seed, so a sample is
  the same text whatever the batch. The transformers backend's verdict rule: the text is cut after the first
  closed marker that ends its line ("[[A]]" + newline), and its last complete marker is the verdict (one the
  sample ran out right after counts too); a marker quoted mid-sentence does not decide. Without one it is forced:
  "\\nVerdict: [[" is appended and the letter read greedily with its log-probs (`force_verdict=False`: abstains). The two letters' log-probs at the
  verdict are read with one more 1-token request; without server log-probs they stay empty (votes still count).
- HTTP: the official `openai` client (openai_client.py) retries 429, 5xx, timeouts and dropped connections with
  backoff (honouring Retry-After); at most `concurrency` requests are in flight; every other failure is one
  LabelerError.
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

from labeler.errors import LabelerError
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds, defuse_special_tokens
from labeler.judge.backends.openai_client import (TOP_LOGPROBS, Client, NoLogprobs, endpoint, letter_logprobs,
                                                  top_pairs)

FORCE_SUFFIX = "\nVerdict: "
SEED_RANGE = 2**31  # every server takes a 31-bit seed
APIS = ("chat", "completions")


def make_openai(model: str | None = None, base_url: str | None = None, tokenizer: str | None = None,
                api: str | None = None, **options):
    """`--backend openai`: the chat endpoint unless `api` says completions; without `api`, completions exactly
    when a `--tokenizer` is given to render the prompt with (never a guess from a server's error)."""
    api = api or ("completions" if tokenizer else "chat")
    if api not in APIS:
        raise LabelerError(f"--api must be one of {', '.join(APIS)}, got {api!r}")
    if api == "chat":
        from labeler.judge.backends.openai_chat import ChatBackend

        return ChatBackend(model=model, base_url=base_url, tokenizer=tokenizer, **options)
    return OpenAIBackend(model=model, base_url=base_url, tokenizer=tokenizer, **options)


class OpenAIBackend:
    def __init__(self, model: str | None = None, base_url: str | None = None, tokenizer: str | None = None,
                 concurrency: int = 8, timeout_s: float = 600.0, max_requests: int | None = None,
                 confirm=None, transport=None,
                 **_: object):
        self.where = endpoint(base_url, model)
        self.confirm = confirm  # shown the cost estimate before a run against a non-local address; False stops it
        if concurrency < 1:
            raise LabelerError(f"--concurrency must be >= 1, got {concurrency}")
        self.model, self.base_url, self.tokenizer_name = self.where.model, self.where.base_url, tokenizer
        self.concurrency, self.timeout_s, self.max_requests = concurrency, timeout_s, max_requests
        self.transport = transport  # tests: an httpx transport that plays a server
        self.model_id = ""
        self.tokenizer = None
        self.logprobs = True  # until the server shows it has none
        self.client: Client | None = None

    @property
    def is_local(self) -> bool:
        return self.where.is_local

    def load(self) -> None:
        if self.tokenizer is not None:
            return
        from transformers import AutoTokenizer

        path = self._tokenizer_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if not self.tokenizer.chat_template:
            raise LabelerError(f"{path}: the tokenizer has no chat template to render the judge prompt with")
        template = hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest()[:12]
        # the served name, the server, and the chat template the prompt was rendered with
        self.model_id = f"openai:{self.model}@{self.where.host}/completions:{template}"
        self.client = Client(self.where, self.timeout_s, self.concurrency, max_requests=self.max_requests,
                             transport=self.transport)

    def _tokenizer_dir(self):
        from labeler.judge.backends.models import resolve_model

        name = self.tokenizer_name or self.model
        try:
            path, _ = resolve_model(None if name == "default" else name)
        except LabelerError:
            path = None
        if path is None or not (path / "tokenizer_config.json").is_file():
            raise LabelerError(f"--api completions renders the judge prompt with the model's chat template: pass "
                               f"--tokenizer (a local model dir or a Hub id in the HF cache; `default` for the default "
                               f"model's), or use --api chat; {name!r} is neither")
        return path

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": defuse_special_tokens(self.tokenizer, system)},
                    {"role": "user", "content": defuse_special_tokens(self.tokenizer, user)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + assistant_prefix

    def prompt_tokens(self, prompt: str) -> int:
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def requests_per_prompt(self, mode: str, samples: int) -> int:
        """Requests one order of a pair takes: direct 1; cot one per sample and one per verdict read (an upper
        bound without server log-probs)."""
        return 1 if mode == "direct" else 2 * samples

    # ---- requests -------------------------------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        """The first choice of a completions request (`choices[0]`), after the client's retries."""
        return self.client.completions(**body)["choices"][0]

    def _map(self, fn, items: list) -> list:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def _next_token(self, prompt: str, choices: tuple[str, str]) -> tuple[str, tuple[float, float] | None, bool]:
        """The greedy next token after `prompt`, the two choices' log-probs there (None: neither letter among the
        top log-probs, or no server log-probs) and whether the server gave log-probs."""
        body = {"prompt": prompt, "max_tokens": 1, "temperature": 0.0}
        if self.logprobs:
            try:
                choice = self._post({**body, "logprobs": TOP_LOGPROBS})
                top = _first_top_logprobs(self.client.where.base_url, choice)
                if top is not None:
                    return _text(choice), letter_logprobs(top, choices), True
            except NoLogprobs:
                pass
            self.logprobs = False
        return _text(self._post(body)), None, False

    # ---- the backend protocol -------------------------------------------------------------------------------------
    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float] | None]:
        """Per prompt the two letters' log-probs, or None where neither letter is among the top log-probs."""
        # the first prompt alone: a server without log-probs is found out by one request, not by a batch of them
        out = [self._next_token(prompts[0], choices)] if prompts else []
        if out and out[0][2]:
            out += self._map(lambda p: self._next_token(p, choices), prompts[1:])
        if not all(has for _, _, has in out):
            raise LabelerError(f"{self.base_url} returns no log-probs, which direct mode reads the verdict from: use "
                               "--mode cot, or a server that returns logprobs (vllm serve, llama.cpp's server)")
        return [logprobs for _, logprobs, _ in out]

    def generate(self, prompts: list[str], n: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                 seeds: list[list[int]] | None = None) -> list[list[Completion]]:
        seeds = seeds or default_seeds(params.seed, len(prompts), n)
        letter = re.escape(marker) + "(" + "|".join(map(re.escape, choices)) + ")"
        rules = re.compile(letter + r"(\]\]|\]?$)"), re.compile(letter + r"\]\][ \t]*[\r\n]")  # marker, line end
        jobs = [(prompt, seed) for prompt, row in zip(prompts, seeds) for seed in row]
        done = self._map(lambda job: self._sample(job[0], job[1], params, choices, marker, rules), jobs)
        return [done[i * n:(i + 1) * n] for i in range(len(prompts))]

    def _sample(self, prompt: str, seed: int, params: SamplingParams, choices: tuple[str, str], marker: str,
                rules: tuple[re.Pattern, re.Pattern]) -> Completion:
        body = {"prompt": prompt, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                "top_p": params.top_p, "seed": seed % SEED_RANGE}
        text = _text(self._post(body))
        verdict, line_end = rules
        ended = line_end.search(text)
        if ended:  # where the local sampler would have stopped
            text = text[: ended.end()]
        found = list(verdict.finditer(text))
        if found:
            last = found[-1]
            _, logprobs, _ = self._next_token(prompt + text[: last.start(1)], choices)
            closed = text if last.group(2) == "]]" else text[: last.end(1)] + "]]"
            return Completion(text=closed, verdict_logprobs=logprobs)
        if not params.force_verdict:
            return Completion(text=text)
        forced = text + FORCE_SUFFIX + marker
        token, logprobs, _ = self._next_token(prompt + forced, choices)
        if logprobs is not None:
            token = choices[0] if logprobs[0] >= logprobs[1] else choices[1]
        if token.strip() not in choices:  # no log-probs, and the greedy token is no letter: it abstains
            return Completion(text=text)
        return Completion(text=f"{forced}{token.strip()}]]", verdict_logprobs=logprobs, forced=True)


def _text(choice: dict) -> str:
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _first_top_logprobs(url: str, choice: dict) -> list[tuple[str, float]] | None:
    """The first token's top log-probs: the completions format (`top_logprobs`: a dict per token; vLLM,
    llama-cpp-python) or the chat-style one some servers also use there (`content`: a list per token, each with
    `top_logprobs` [{token, logprob}]; llama.cpp's own server). None: the server sent none."""
    logprobs = choice.get("logprobs")
    if logprobs is None:
        return None
    if not isinstance(logprobs, dict):
        raise LabelerError(f"{url}/completions: choices[0].logprobs is {type(logprobs).__name__} "
                           f"{str(logprobs)[:60]!r}, not an object")
    if logprobs.get("top_logprobs") is not None:
        per_token = logprobs["top_logprobs"]
        if not isinstance(per_token, list):
            raise LabelerError(f"{url}/completions: choices[0].logprobs.top_logprobs is "
                               f"{type(per_token).__name__}, not a list (one entry per token)")
        return top_pairs(f"{url}/completions: choices[0].logprobs.top_logprobs[0]", per_token[0]) if per_token else None
    content = logprobs.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict) and "top_logprobs" in content[0]:
        return top_pairs(f"{url}/completions: choices[0].logprobs.content[0].top_logprobs", content[0]["top_logprobs"])
    return None
