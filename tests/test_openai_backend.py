"""`--backend openai` against a real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's server (the
`server-tests` extra, installed by .ci/setup) serving the default model's GGUF file. Retries and the concurrency
limit, which a healthy local server never exercises, are checked on an httpx transport that plays the failures.
`--api chat` (the default without `--tokenizer`) is checked here against the same server, and against recorded
bodies of hosted servers in test_openai_chat.py."""

import json
import re
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx2 as httpx  # the openai client's HTTP library
import pytest

from helpers import run
from labeler.errors import LabelerError
from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.judge import CHOICES, MARKER

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from llama_server import MODEL_NAME, free_port, llama_server  # noqa: E402

PAIRS = Path(__file__).resolve().parents[1] / "examples" / "pairs.jsonl"
SERVER_ARGS = ["--backend", "openai", "--model", MODEL_NAME, "--tokenizer", "default"]


@pytest.fixture(scope="module")
def server():
    with llama_server() as url:
        yield url


def backend_for(url: str, **kwargs):
    backend = make_backend("openai", model=MODEL_NAME, base_url=url, tokenizer="default", **kwargs)
    backend.load()
    return backend


def samples(db: Path, mode: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT s.pair_id, s.position, s.sample_idx, s.verdict, s.logprob_a, s.logprob_b, s.forced, "
                           "s.text, j.judge_id FROM samples s JOIN judgments j USING (pair_id, judge_key) "
                           "WHERE j.mode = ? ORDER BY 1, 2, 3", [mode]).fetchall()


def test_direct_and_cot_labels_come_back_through_the_server(server, tmp_path):
    db = tmp_path / "l.duckdb"
    run("annotate", PAIRS, "--db", db, "--base-url", server, *SERVER_ARGS, "--limit", "2", "-q", ok=True)
    direct = samples(db, "direct")
    assert len(direct) == 4 and {r[1] for r in direct} == {"AB", "BA"}
    assert all(r[8].startswith(f"openai:{MODEL_NAME}@") and r[3] in "AB" for r in direct)
    assert all(-30 < r[4] < 0 and -30 < r[5] < 0 and r[4] != r[5] for r in direct)  # read from top_logprobs
    run("annotate", "--db", db, "--base-url", server, *SERVER_ARGS, "--limit", "2", "--mode", "cot", "-k", "2",
        "--max-new-tokens", "24", "-q", ok=True)
    cot = samples(db, "cot")
    assert len(cot) == 8 and all(r[3] in ("A", "B") for r in cot)
    for r in cot:  # each ends in its verdict, written or forced, with the letters' log-probs where it was read
        seen = r[3] if r[1] == "AB" else {"A": "B", "B": "A"}[r[3]]
        assert r[7].endswith(f"[[{seen}]]")
        assert r[4] is not None and r[5] is not None
        assert r[6] == ("\nVerdict: [[" in r[7])


def test_eval_judges_through_the_server(server, tmp_path):
    db, labeled = tmp_path / "l.duckdb", PAIRS.with_name("pairs_labeled.jsonl")
    run("eval", labeled, "--db", db, "--base-url", server, *SERVER_ARGS, "--limit", "2", "-q", ok=True)
    direct = samples(db, "direct")
    assert len(direct) == 4 and all(r[8].startswith(f"openai:{MODEL_NAME}@") for r in direct)


def test_each_cot_sample_is_one_request_with_its_own_seed():
    """One request per sample (llama.cpp ignores `n`), seeded by the sample's seed; the last complete marker decides
    (the quoted "[[B]]" mid-sentence does not), its letters' log-probs read with one more 1-token request."""
    bodies = []

    def answer(request):
        body = __import__("json").loads(request.content)
        bodies.append(body)
        if body["max_tokens"] == 1:
            return httpx.Response(200, json=completion())
        return httpx.Response(200, json={"choices": [{"text": "Looks fine. [[Assistant]] is vague; [[B]] wins. [[A]]"}]})

    backend = backend_for("http://127.0.0.1:9/v1", concurrency=2, transport=httpx.MockTransport(answer))
    out = backend.generate(["p1", "p2"], 2, SamplingParams(max_new_tokens=16, temperature=0.7, top_p=0.9), CHOICES,
                           MARKER, seeds=[[5, 2**40 + 3], [7, 9]])
    sampled = sorted((b["prompt"], b["seed"]) for b in bodies if b["max_tokens"] == 16)
    assert sampled == [("p1", 3), ("p1", 5), ("p2", 7), ("p2", 9)]
    assert all(b["temperature"] == 0.7 and b["top_p"] == 0.9 and b["model"] == MODEL_NAME for b in bodies
               if b["max_tokens"] == 16)
    reads = sorted(b["prompt"] for b in bodies if b["max_tokens"] == 1)
    read = "Looks fine. [[Assistant]] is vague; [[B]] wins. [["
    assert reads == ["p1" + read, "p1" + read, "p2" + read, "p2" + read]
    assert all(c.text == "Looks fine. [[Assistant]] is vague; [[B]] wins. [[A]]" and c.verdict_logprobs == (-1.8, -0.2)
               and not c.forced for row in out for c in row)


def test_labels_agree_with_the_transformers_backend_on_the_same_model(server):
    """Same weights (the GGUF the default model is converted from), another engine: direct-mode log-probs of each
    order must agree closely; the per-order verdicts where the two letters are not within a hair."""
    import json

    from labeler.judge.prompts import render
    from schemas import Pair

    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()[:6]]
    pairs = [Pair(pair_id=str(r["id"]), prompt=r["prompt"], response_a=r["response_a"], response_b=r["response_b"])
             for r in rows]
    local = make_backend("transformers", device="cpu")
    local.load()
    remote = backend_for(server)
    texts = [vars(render("direct", p, pos)) for p in pairs for pos in ("AB", "BA")]
    ours = local.verdict_logprobs([local.render_chat(**t) for t in texts], CHOICES)
    theirs = remote.verdict_logprobs([remote.render_chat(**t) for t in texts], CHOICES)
    assert [local.render_chat(**t) for t in texts] == [remote.render_chat(**t) for t in texts]
    for (a1, b1), (a2, b2) in zip(ours, theirs):
        assert abs(a1 - a2) < 0.15 and abs(b1 - b2) < 0.15
        if abs(a1 - b1) > 0.1:
            assert (a1 > b1) == (a2 > b2)


def test_a_server_key_is_sent_and_a_wrong_one_is_one_error_line(tmp_path):
    db = tmp_path / "l.duckdb"
    with llama_server(api_key="sekrit") as url:
        args = ["annotate", PAIRS, "--db", db, "--base-url", url, *SERVER_ARGS, "--limit", "1", "-q"]
        bad = run(*args, env={"LABELER_API_KEY": "wrong", "OPENAI_API_KEY": ""})
        assert bad.exit_code == 1 and bad.stderr == (f"Error: {url} refused the API key (HTTP 401): set "
                                                     "LABELER_API_KEY or OPENAI_API_KEY to a key it accepts\n")
        assert run(*args, env={"LABELER_API_KEY": "", "OPENAI_API_KEY": ""}).exit_code == 1
        run(*args, env={"LABELER_API_KEY": "", "OPENAI_API_KEY": "sekrit"}, ok=True)
    assert len(samples(db, "direct")) == 2


def test_a_server_without_logprobs_refuses_direct_mode_and_still_votes_in_cot(tmp_path):
    db = tmp_path / "l.duckdb"
    with llama_server(logits_all=False) as url:
        bad = run("annotate", PAIRS, "--db", db, "--base-url", url, *SERVER_ARGS, "--limit", "1", "-q")
        assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
        assert bad.stderr.startswith(f"Error: {url} returns no log-probs, which direct mode reads the verdict from")
        run("annotate", "--db", db, "--base-url", url, *SERVER_ARGS, "--limit", "1", "--mode", "cot", "-k", "2",
            "--max-new-tokens", "16", "-q", ok=True)
    cot = samples(db, "cot")
    assert len(cot) == 4 and all(r[4] is None and r[5] is None for r in cot)
    assert all(r[3] in ("A", "B") or not r[6] for r in cot)


def test_no_server_and_no_url_are_one_error_line_each(tmp_path):
    db = tmp_path / "l.duckdb"
    url = f"http://127.0.0.1:{free_port()}/v1"
    bad = run("annotate", PAIRS, "--db", db, "--base-url", url, *SERVER_ARGS, "--limit", "1", "-q")
    assert bad.exit_code == 1 and bad.stderr.startswith(f"Error: cannot connect to {url} (")
    assert bad.stderr.endswith("is the server running?\n") and bad.stderr.count("\n") == 1
    bad = run("annotate", "--db", db, "--backend", "openai", "--model", MODEL_NAME, env={"LABELER_BASE_URL": ""})
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: --backend openai needs --base-url")
    bad = run("annotate", "--db", db, "--backend", "openai", "--model", "some-name", "--base-url", url, "--api",
              "completions")
    assert bad.exit_code == 1 and "pass --tokenizer" in bad.stderr


# ---- failures a healthy local server does not produce: played by an httpx transport ----------------------------------
def completion(text: str = "B") -> dict:
    return {"choices": [{"text": text, "logprobs": {"top_logprobs": [{"B": -0.2, "A": -1.8, "C": -4.0}]}}]}


def played(answer, **kwargs):
    return backend_for("http://127.0.0.1:9/v1", transport=httpx.MockTransport(answer), **kwargs)


def test_429_and_5xx_are_retried_with_backoff_and_auth_failure_is_not(monkeypatch):
    """The openai client's retries: Retry-After honoured, else 0.5 s doubling with up to 25% jitter."""
    answers = iter([httpx.Response(429, headers={"retry-after": "0.25"}), httpx.Response(503, json={"error": "busy"}),
                    httpx.Response(502), httpx.Response(200, json=completion())])
    calls, waits = [], []
    monkeypatch.setattr("openai._base_client.time.sleep", waits.append)
    backend = played(lambda request: calls.append(request) or next(answers))
    assert backend.verdict_logprobs(["p"], CHOICES) == [(-1.8, -0.2)]
    assert len(calls) == 4 and waits[0] == 0.25 and 0.75 <= waits[1] <= 1.0 and 1.5 <= waits[2] <= 2.0
    backend = played(lambda request: httpx.Response(403))
    with pytest.raises(LabelerError, match="refused the API key \\(HTTP 403\\)"):
        backend.verdict_logprobs(["p"], CHOICES)
    backend = played(lambda request: httpx.Response(500, json={"error": {"message": "boom"}}))
    waits.clear()
    with pytest.raises(LabelerError, match="HTTP 500: boom"):
        backend.verdict_logprobs(["p"], CHOICES)
    assert len(waits) == 5


def test_at_most_concurrency_requests_are_in_flight():
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def slow(request):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return httpx.Response(200, json=completion())

    backend = played(slow, concurrency=3)
    assert backend.verdict_logprobs(["p"] * 12, CHOICES) == [(-1.8, -0.2)] * 12
    assert state["most"] == 3


def test_chat_style_logprobs_are_read_too_and_a_letter_outside_the_top_gets_the_lowest_shown():
    top = [{"token": "B", "logprob": -0.2}, {"token": "C", "logprob": -2.5}]
    body = {"choices": [{"text": "B", "logprobs": {"content": [{"token": "B", "logprob": -0.2, "top_logprobs": top}]}}]}
    backend = played(lambda request: httpx.Response(200, json=body))
    assert backend.verdict_logprobs(["p"], CHOICES) == [(-2.5, -0.2)]


def test_an_answer_that_is_no_completion_is_one_error():
    backend = played(lambda request: httpx.Response(200, text="<html>"))
    with pytest.raises(LabelerError, match="the answer is not JSON \\('<html>'\\)"):
        backend.verdict_logprobs(["p"], CHOICES)


@pytest.mark.parametrize("top, expected", [
    ({" a": -0.3, "\u2581B": -1.6, "x": -4.0}, (-0.3, -1.6)),  # 29.7: spellings of the letters count
    ({"The": -0.1, "x": -4.0}, None),  # neither letter: the order abstains, never a B with P(A)=0.5
])
def test_completions_read_letter_spellings_and_abstain_without_a_letter(top, expected):
    body = {"choices": [{"text": "x", "logprobs": {"top_logprobs": [top]}}]}
    assert played(lambda request: httpx.Response(200, json=body)).verdict_logprobs(["p"], CHOICES) == [expected]


@pytest.mark.parametrize("logprobs, said", [
    ("garbage", "choices[0].logprobs is str"),
    ({"top_logprobs": "A"}, "choices[0].logprobs.top_logprobs is str, not a list"),
    ({"top_logprobs": [["A", "B"]]}, "choices[0].logprobs.top_logprobs[0] is list"),
    ({"top_logprobs": [{"A": float("nan"), "B": -1.0}]}, "token 'A' has log-prob nan"),
])
def test_completions_with_malformed_logprobs_are_one_error(logprobs, said):
    body = json.dumps({"choices": [{"text": "A", "logprobs": logprobs}]})  # NaN too, as Python's json writes it
    answer = httpx.Response(200, content=body.encode(), headers={"content-type": "application/json"})
    with pytest.raises(LabelerError, match=re.escape(said)):
        played(lambda request: answer).verdict_logprobs(["p"], CHOICES)


# ---- --api chat against the real server -------------------------------------------------------------------------------
CHAT_ARGS = ["--backend", "openai", "--model", MODEL_NAME, "--api", "chat"]


def test_chat_direct_and_cot_through_the_server(server, tmp_path):
    """llama-cpp-python's /v1/chat/completions with logprobs: direct reads both letters from the first token's top
    log-probs; cot votes (the server ignores `n`, measured here: one request per sample)."""
    db = tmp_path / "l.duckdb"
    run("annotate", PAIRS, "--db", db, "--base-url", server, *CHAT_ARGS, "--limit", "2", "-q", ok=True)
    direct = samples(db, "direct")
    assert len(direct) == 4 and all("/chat:" in r[8] for r in direct)
    assert all(r[4] is not None and -30 < r[4] < 0 and -30 < r[5] < 0 for r in direct)
    run("annotate", "--db", db, "--base-url", server, *CHAT_ARGS, "--limit", "2", "--mode", "cot", "-k", "2",
        "--max-new-tokens", "24", "-q", ok=True)
    cot = samples(db, "cot")
    assert len(cot) == 8 and all(r[3] in ("A", "B") for r in cot)
    backend = make_backend("openai", model=MODEL_NAME, base_url=server, api="chat")
    backend.load()
    backend.generate([backend.render_chat("s", "Say hi.", "")], 2, SamplingParams(max_new_tokens=4), CHOICES, MARKER)
    assert backend.multi_n is False
