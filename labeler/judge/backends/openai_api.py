"""The judge against any OpenAI-compatible server (`--backend openai --base-url URL --model NAME`): `vllm serve`,
llama.cpp's server, llama-cpp-python's server, Ollama, a hosted endpoint.

The prompt is rendered here, with the chat template of a local Hugging Face tokenizer (`--tokenizer`, else `--model`
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
- HTTP (httpx): at most `concurrency` requests in flight; 429, 5xx, timeouts and dropped connections are retried
  with exponential backoff (honouring Retry-After); 401/403, connection refused and other 4xx are one LabelerError.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

from labeler.errors import LabelerError
from labeler.judge.backends.base import Completion, SamplingParams, default_seeds, defuse_special_tokens

FORCE_SUFFIX = "\nVerdict: "
TOP_LOGPROBS = 20
KEY_ENVS = ("LABELER_API_KEY", "OPENAI_API_KEY")
RETRIES = 5
CONNECT_RETRIES = 2  # a refused connection is almost always "no server there": say so quickly
BACKOFF_S = 0.5
SEED_RANGE = 2**31  # every server takes a 31-bit seed


class NoLogprobs(LabelerError):
    """The server returned no log-probs where they were asked for."""


class OpenAIBackend:
    def __init__(self, model: str | None = None, base_url: str | None = None, tokenizer: str | None = None,
                 concurrency: int = 8, timeout_s: float = 600.0, **_: object):
        if not base_url:
            raise LabelerError("--backend openai needs --base-url (or LABELER_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        if not model:
            raise LabelerError("--backend openai needs --model: the name the server serves the model under")
        if concurrency < 1:
            raise LabelerError(f"--concurrency must be >= 1, got {concurrency}")
        self.model, self.base_url, self.tokenizer_name = str(model), base_url.rstrip("/"), tokenizer
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.model_id = ""
        self.tokenizer = None
        self.logprobs = True  # until the server shows it has none
        self._client = None

    def load(self) -> None:
        if self.tokenizer is not None:
            return
        import httpx
        from transformers import AutoTokenizer

        path = self._tokenizer_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if not self.tokenizer.chat_template:
            raise LabelerError(f"{path}: the tokenizer has no chat template to render the judge prompt with")
        template = hashlib.sha256(self.tokenizer.chat_template.encode()).hexdigest()[:12]
        self.model_id = f"openai:{self.model}@{template}"  # the served name and the chat template the prompt used
        key = next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(self.timeout_s, connect=10.0),
                                    limits=httpx.Limits(max_connections=self.concurrency))

    def _tokenizer_dir(self):
        from labeler.judge.backends.models import resolve_model

        name = self.tokenizer_name or self.model
        try:
            path, _ = resolve_model(None if name == "default" else name)
        except LabelerError:
            path = None
        if path is None or not (path / "tokenizer_config.json").is_file():
            raise LabelerError(f"--backend openai renders the judge prompt with the model's chat template: pass "
                               f"--tokenizer (a local model dir or a Hub id in the HF cache; `default` for the default "
                               f"model's); {name!r} is neither")
        return path

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": defuse_special_tokens(self.tokenizer, system)},
                    {"role": "user", "content": defuse_special_tokens(self.tokenizer, user)}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + assistant_prefix

    # ---- requests -------------------------------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        """The first choice of a completions request (`choices[0]`), after retries."""
        import httpx

        url = f"{self.base_url}/completions"
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                response = self._client.post(url, json={"model": self.model, **body})
            except httpx.ConnectError as e:
                if attempt >= CONNECT_RETRIES:
                    raise LabelerError(f"cannot connect to {self.base_url} ({_reason(e)}): is the server running?") from None
                _sleep(attempt, None)
                continue
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as e:
                if last:
                    raise LabelerError(f"{url}: no answer after {RETRIES + 1} tries ({_reason(e)})") from None
                _sleep(attempt, None)
                continue
            status = response.status_code
            if status in (401, 403):
                raise LabelerError(f"{self.base_url} refused the API key (HTTP {status}): set LABELER_API_KEY or "
                                   "OPENAI_API_KEY to a key it accepts")
            if status < 400:
                return _first_choice(url, response)
            message = _message(response)
            if "logprobs" in message.lower() and "logprobs" in body:
                raise NoLogprobs(f"{self.base_url} returns no log-probs ({message})")
            if (status == 429 or status >= 500) and not last:
                _sleep(attempt, response.headers.get("retry-after"))
                continue
            raise LabelerError(f"{url}: HTTP {status}: {message}")
        raise AssertionError("unreachable")

    def _map(self, fn, items: list) -> list:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def _next_token(self, prompt: str, choices: tuple[str, str]) -> tuple[str, tuple[float, float] | None]:
        """The greedy next token after `prompt` and the two choices' log-probs there (None without server log-probs)."""
        body = {"prompt": prompt, "max_tokens": 1, "temperature": 0.0}
        if self.logprobs:
            try:
                choice = self._post({**body, "logprobs": TOP_LOGPROBS})
                top = _first_top_logprobs(choice.get("logprobs") or {})
                if top:
                    return choice.get("text") or "", _pick(top, choices)
            except NoLogprobs:
                pass
            self.logprobs = False
        return self._post(body).get("text") or "", None

    # ---- the backend protocol -------------------------------------------------------------------------------------
    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        # the first prompt alone: a server without log-probs is found out by one request, not by a batch of them
        out = [self._next_token(prompts[0], choices)[1]] if prompts else []
        if out and out[0] is not None:
            out += self._map(lambda p: self._next_token(p, choices)[1], prompts[1:])
        if any(o is None for o in out):
            raise LabelerError(f"{self.base_url} returns no log-probs, which direct mode reads the verdict from: use "
                               "--mode cot, or a server that returns logprobs (vllm serve, llama.cpp's server)")
        return out

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
        text = self._post(body).get("text") or ""
        verdict, line_end = rules
        ended = line_end.search(text)
        if ended:  # where the local sampler would have stopped
            text = text[: ended.end()]
        found = list(verdict.finditer(text))
        if found:
            last = found[-1]
            _, logprobs = self._next_token(prompt + text[: last.start(1)], choices)
            closed = text if last.group(2) == "]]" else text[: last.end(1)] + "]]"
            return Completion(text=closed, verdict_logprobs=logprobs)
        if not params.force_verdict:
            return Completion(text=text)
        forced = text + FORCE_SUFFIX + marker
        token, logprobs = self._next_token(prompt + forced, choices)
        if logprobs is not None:
            token = choices[0] if logprobs[0] >= logprobs[1] else choices[1]
        if token.strip() not in choices:  # no log-probs, and the greedy token is no letter: it abstains
            return Completion(text=text)
        return Completion(text=f"{forced}{token.strip()}]]", verdict_logprobs=logprobs, forced=True)


def _first_choice(url: str, response) -> dict:
    try:
        choice = response.json()["choices"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LabelerError(f"{url}: the answer is no completion ({' '.join(response.text.split())[:200]!r})") from None
    if not isinstance(choice, dict):
        raise LabelerError(f"{url}: the answer is no completion ({choice!r:.200})")
    return choice


def _first_top_logprobs(logprobs: dict) -> dict[str, float] | None:
    """The first token's top log-probs as {token: logprob}: the completions format (`top_logprobs`: a dict per
    token; vLLM, llama-cpp-python) or the chat-style one some servers also use there (`content`: a list per token,
    each with `top_logprobs` [{token, logprob}]; llama.cpp's own server)."""
    if logprobs.get("top_logprobs"):
        return logprobs["top_logprobs"][0] or None
    content = logprobs.get("content") or []
    if content and content[0].get("top_logprobs"):
        return {t["token"]: t["logprob"] for t in content[0]["top_logprobs"]}
    return None


def _pick(top: dict[str, float], choices: tuple[str, str]) -> tuple[float, float]:
    """The choices' log-probs from one position's top log-probs; a choice not among them gets the lowest shown."""
    floor = min(top.values())
    return tuple(float(top.get(c, floor)) for c in choices)


def _message(response) -> str:
    try:
        error = response.json().get("error") or response.json().get("detail") or response.json()
        text = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:300]


def _reason(e: Exception) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _sleep(attempt: int, retry_after: str | None) -> None:
    try:
        wait = float(retry_after) if retry_after else BACKOFF_S * 2**attempt
    except ValueError:
        wait = BACKOFF_S * 2**attempt
    time.sleep(min(max(wait, 0.0), 30.0))

