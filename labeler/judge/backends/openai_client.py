"""What both OpenAI-compatible backends (chat and completions) share: the endpoint (URL checks, the key from the
environment, local or not), the official `openai` client (its retries, backoff, `Retry-After` and timeouts), a
request budget (`--max-requests`), and reading the verdict letters from a server's top log-probs.

The key is read from LABELER_API_KEY or OPENAI_API_KEY only, handed to the client and nowhere else: it is never part
of the judge id, the run's params or a message (a server's error text is scrubbed of it)."""

from __future__ import annotations

import ipaddress
import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from labeler.errors import LabelerError, RequestLimitReached

KEY_ENVS = ("LABELER_API_KEY", "OPENAI_API_KEY")
NO_KEY = "none"  # the client insists on a key; a local server without one ignores it
RETRIES = 5
CONNECT_TRIES = 3  # a local server that refuses this often is not running: say so in a second, not after retries
TOP_LOGPROBS = 20
LETTER_NOISE = "\u2581\u0120 \t\r\n*\"'([{:."  # sentencepiece/BPE space marks and punctuation around a letter


class NoLogprobs(LabelerError):
    """The server returned no log-probs where they were asked for."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def is_local(self) -> bool:
        """Loopback or a private network: a server of the user's own, where requests cost nothing."""
        host = urlsplit(self.base_url).hostname or ""
        if host == "localhost" or host.endswith(".local"):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address.is_loopback or address.is_private


def endpoint(base_url: str | None, model: str | None) -> Endpoint:
    if not base_url:
        raise LabelerError("--backend openai needs --base-url (or LABELER_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    if not model:
        raise LabelerError("--backend openai needs --model: the name the server serves the model under")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabelerError(f"--base-url {base_url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)")
    return Endpoint(base_url.strip().rstrip("/"), str(model))


def api_key() -> str | None:
    return next((os.environ[k] for k in KEY_ENVS if os.environ.get(k)), None)


class Client:
    """The `openai` client of one endpoint, with errors as one-line LabelerErrors and a request budget."""

    def __init__(self, where: Endpoint, timeout_s: float = 600.0, concurrency: int = 8, retries: int = RETRIES,
                 max_requests: int | None = None, transport=None):
        import httpx2
        import openai

        self.where, self.max_requests, self.sent = where, max_requests, 0
        self.checked = transport is not None  # a test's transport plays the server: nothing to connect to
        self._key = api_key()
        self._lock = threading.Lock()
        timeout = httpx2.Timeout(timeout_s, connect=10.0)
        http = httpx2.Client(transport=transport, timeout=timeout,
                             limits=httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency))
        self.openai = openai.OpenAI(api_key=self._key or NO_KEY, base_url=where.base_url, max_retries=retries,
                                    timeout=timeout, http_client=http)

    def chat(self, **body) -> dict:
        return self._send("chat/completions", lambda client: client.chat.completions.with_raw_response.create(
            model=self.where.model, **body))

    def completions(self, **body) -> dict:
        return self._send("completions", lambda client: client.completions.with_raw_response.create(
            model=self.where.model, **body))

    def _send(self, path: str, call: Callable) -> dict:
        import openai

        with self._lock:
            if self.max_requests is not None and self.sent >= self.max_requests:
                raise RequestLimitReached(f"stopped at --max-requests {self.max_requests}")
            self.sent += 1
        url = f"{self.where.base_url}/{path}"
        self._check_local_server()
        try:
            raw = call(self.openai)
        except openai.AuthenticationError as e:
            raise LabelerError(f"{self.where.base_url} refused the API key (HTTP {e.status_code}): set "
                               "LABELER_API_KEY or OPENAI_API_KEY to a key it accepts") from None
        except openai.PermissionDeniedError as e:
            raise LabelerError(f"{self.where.base_url} refused the API key (HTTP {e.status_code}): set "
                               "LABELER_API_KEY or OPENAI_API_KEY to a key it accepts") from None
        except openai.APITimeoutError:
            raise LabelerError(f"{url}: no answer within the timeout after {self.openai.max_retries + 1} tries"
                               ) from None
        except openai.APIConnectionError as e:
            if isinstance(e.__cause__, ConnectionError) or type(e.__cause__).__name__ == "ConnectError":
                raise LabelerError(f"cannot connect to {self.where.base_url} ({self._scrub(_cause(e))}): is the "
                                   "server running?") from None
            raise LabelerError(f"{url}: the connection failed after {self.openai.max_retries + 1} tries "
                               f"({self._scrub(_cause(e))})") from None
        except openai.APIStatusError as e:
            message = self._scrub(_message(e.response))
            if "logprobs" in message.lower():
                raise NoLogprobs(f"{self.where.base_url} returns no log-probs ({message})") from None
            raise LabelerError(f"{url}: HTTP {e.status_code}: {message}") from None
        return self._body(url, raw.http_response)

    def _check_local_server(self) -> None:
        """Once, for a local address: is anything listening? (The client's retries would take ~15 s to say no.)"""
        if self.checked or not self.where.is_local:
            return
        import socket
        import time

        parts = urlsplit(self.where.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for attempt in range(CONNECT_TRIES):
            try:
                socket.create_connection((parts.hostname, port), timeout=10).close()
                self.checked = True
                return
            except OSError as e:
                reason = e.strerror or type(e).__name__
                time.sleep(0.25 * 2**attempt if attempt < CONNECT_TRIES - 1 else 0)
        raise LabelerError(f"cannot connect to {self.where.base_url} ({reason}): is the server running?")

    def _body(self, url: str, response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise LabelerError(f"{url}: the answer is not JSON ({self._scrub(' '.join(response.text.split())[:200])!r})"
                               ) from None
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise LabelerError(f"{url}: the answer has no choices ({self._scrub(json.dumps(body)[:200])})")
        return body

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _cause(e: Exception) -> str:
    cause = e.__cause__ or e
    return " ".join(str(cause).split()) or type(cause).__name__


def _message(response) -> str:
    try:
        data = response.json()
        error = (data.get("error") or data.get("detail") or data) if isinstance(data, dict) else data
        text = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    except ValueError:
        text = response.text
    return " ".join(str(text).split())[:300]


# ---- the verdict letters from top log-probs ------------------------------------------------------------------------
def letter(token: str, choices: tuple[str, str]) -> str | None:
    """The choice a token spells, as tokenizers write it: " A", "a", "\u2581A", "ĠA", "A." ... (None: no choice)."""
    bare = token.strip(LETTER_NOISE).upper()
    return bare if bare in choices else None


def letter_logprobs(top: list[tuple[str, float]], choices: tuple[str, str]) -> tuple[float, float] | None:
    """The two choices' log-probs from one position's top log-probs, each summed over its spellings. A choice not
    shown gets the lowest shown (an upper bound); None when neither is shown: the judge abstains there."""
    found: dict[str, list[float]] = {}
    for token, logprob in top:
        c = letter(token, choices)
        if c is not None:
            found.setdefault(c, []).append(logprob)
    if not found:
        return None
    floor = min(logprob for _, logprob in top)
    return tuple(_logsumexp(found[c]) if c in found else floor for c in choices)


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def top_pairs(where: str, entries) -> list[tuple[str, float]]:
    """[(token, logprob)] from a top log-probs list of {token, logprob} (chat) or a {token: logprob} dict
    (completions); a LabelerError naming `where` for any other shape, a NaN or a positive log-prob."""
    if isinstance(entries, dict):
        items = list(entries.items())
    elif isinstance(entries, list) and all(isinstance(e, dict) for e in entries):
        items = [(e.get("token"), e.get("logprob")) for e in entries]
    else:
        raise LabelerError(f"{where} is {_shown(entries)}, not a list of {{token, logprob}}")
    out = []
    for token, logprob in items:
        if not isinstance(token, str) or isinstance(logprob, bool) or not isinstance(logprob, int | float):
            raise LabelerError(f"{where} has an entry that is no (token, log-prob): {_shown([token, logprob])}")
        if math.isnan(logprob) or logprob > 1e-3:
            raise LabelerError(f"{where}: token {token!r} has log-prob {logprob}, not a number <= 0")
        out.append((token, max(float(logprob), -1e4)))
    return out


def _shown(value) -> str:
    return f"{type(value).__name__} {json.dumps(value)[:80]}"
