"""`--backend openai --api chat` against a local replay server (tests/replay_server.py) playing response bodies in
OpenAI's and vLLM's shapes, HTTP errors and faults: each is a correct retry or one `Error:` line, nothing is
half-stored, and a rerun resumes. The same path against llama-cpp-python's real server is in test_openai_backend.py."""

import json
import math
from pathlib import Path

import duckdb
import pytest

from helpers import run, write_pairs
from labeler.errors import LabelerError
from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.backends.openai_chat import DIRECT_ASK, FORCE_ASK
from labeler.judge.judge import CHOICES, MARKER
from replay_server import CLOSE, HANG, TRUNCATED, answer, recorded, replay_server

MODEL = "gpt-4o-mini"
NO_KEY = {"LABELER_API_KEY": "", "OPENAI_API_KEY": ""}


def args(url: str, db: Path, *more) -> list:
    return ["annotate", "--db", db, "--backend", "openai", "--model", MODEL, "--base-url", url, "-q", *more]


def rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def chat(top: list, content: str = "B") -> dict:
    """A chat answer whose first token has these top log-probs ([(token, logprob)] or raw JSON)."""
    tuples = isinstance(top, list) and all(isinstance(t, tuple) for t in top)
    entries = [{"token": t, "logprob": lp} for t, lp in top] if tuples else top
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": {"content": [{"token": content, "logprob": -0.1, "top_logprobs": entries}]}}]}


def backend(url: str, **kwargs):
    made = make_backend("openai", model=MODEL, base_url=url, **kwargs)
    made.load()
    return made


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    waits = []
    monkeypatch.setattr("openai._base_client.time.sleep", waits.append)
    for key, value in NO_KEY.items():
        monkeypatch.setenv(key, value)
    return waits


# ---- direct -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("openai_chat_direct", (-1.3132616, math.log(math.exp(-0.31326166) + math.exp(-6.1882615)))),  # " B" counts as B
    ("vllm_chat_direct", (math.log(math.exp(-0.0485) + math.exp(-7.2985)), -3.0485)),  # "a" counts as A
])
def test_direct_reads_the_letter_from_the_first_tokens_top_logprobs(name, expected):
    with replay_server([answer(body=recorded(name))]) as (url, replay):
        judge = backend(url)
        messages = judge.render_chat("sys", "user", "Verdict: [[")
        assert judge.verdict_logprobs([messages], CHOICES)[0] == pytest.approx(expected)
    body = replay.requests[0]
    assert body["_path"] == "/v1/chat/completions" and body["model"] == MODEL
    assert (body["max_tokens"], body["temperature"], body["logprobs"], body["top_logprobs"]) == (1, 0.0, True, 20)
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "user" + DIRECT_ASK}]
    assert "n" not in body and "seed" not in body


def test_annotate_over_chat_needs_no_tokenizer_and_names_the_server_in_the_judge_id(tmp_path):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, replay):
        run(*args(url, db, pairs), env=NO_KEY, ok=True)
        assert len(replay.requests) == 4  # two pairs, two orders
        host = url.split("/")[2]
    (judge_id, count, labels), = rows(db, "SELECT judge_id, count(*), list(DISTINCT label) FROM judgments GROUP BY 1")
    assert judge_id.startswith(f"openai:{MODEL}@{host}/chat:") and count == 2
    # the recorded answer says B for both orders, so the pooled P(A) is exactly 0.5 after the swap: undecided
    assert labels == [None]
    with replay_server([answer(body=recorded("vllm_chat_direct"))]) as (other, _):
        run(*args(other, db), env=NO_KEY, ok=True)  # another server: another judge key, judged afresh
    assert rows(db, "SELECT count(DISTINCT judge_key), count(DISTINCT judge_id) FROM judgments") == [(2, 2)]


def test_no_letter_among_the_top_logprobs_abstains_and_the_summary_counts_it(tmp_path):
    """29.7: top log-probs without a letter were stored as B with P(A)=0.5; now the pair has no label."""
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 1)
    body = chat([("Response", -0.2), ("**", -1.9), ("The", -3.0)], content="Response")
    with replay_server([answer(body=body)]) as (url, _):
        result = run(*[a for a in args(url, db, pairs) if a != "-q"], env=NO_KEY, ok=True)
    assert rows(db, "SELECT label, p_a, abstained, confidence FROM judgments") == [(None, None, 2, 0.0)]
    assert "0 / 0 / 1" in result.stdout  # labels A / B / undecided


@pytest.mark.parametrize("spelled", [" A", "a", "\u2581A", "A."])
def test_letter_spellings_count_as_the_letter(spelled):
    with replay_server([answer(body=chat([(spelled, -0.1), ("B", -2.4)]))]) as (url, _):
        assert backend(url).verdict_logprobs(["[]"], CHOICES) == [(-0.1, -2.4)]


# ---- bad answers and faults: one Error line, nothing stored, the rerun resumes --------------------------------------
BAD_BODIES = {
    "top_logprobs as a string": chat("A B"),
    "top_logprobs as a list of strings": chat(["A", "B"]),
    "a NaN log-prob": chat([("A", float("nan")), ("B", -1.0)]),
    "logprobs garbage": {"choices": [{"message": {"content": "A"}, "logprobs": "garbage"}]},
    "not JSON": "<html>502 Bad Gateway</html>",
    "no choices": {"error": None, "choices": []},
    "content not text": {"choices": [{"message": {"content": ["A"]}, "logprobs": None}]},
}


@pytest.mark.parametrize("what", BAD_BODIES)
def test_a_bad_answer_is_one_error_line_and_nothing_is_stored(tmp_path, what):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    mode = ["--mode", "cot", "-k", "1"] if what == "content not text" else []
    with replay_server([answer(body=BAD_BODIES[what])]) as (url, _):
        bad = run(*args(url, db, pairs, *mode), env=NO_KEY)
    assert bad.exit_code == 1 and bad.stderr.startswith("Error: ") and bad.stderr.count("\n") == 1, bad.stderr
    assert f"{url}/chat/completions" in bad.stderr
    assert rows(db, "SELECT count(*) FROM judgments") == [(0,)] and rows(db, "SELECT count(*) FROM samples") == [(0,)]
    with replay_server([answer(body=recorded("vllm_chat_direct"))]) as (url, _):
        run(*args(url, db, *mode), env=NO_KEY, ok=True)  # the rerun judges what the failed run left
    assert rows(db, "SELECT count(*) FROM judgments") == [(2,)]


@pytest.mark.parametrize("url, said", [("not a url", "is not an http(s) URL"), ("ftp://host/v1", "is not an http(s) URL")])
def test_a_base_url_that_is_no_http_url_is_one_error_line(tmp_path, url, said):
    bad = run(*args(url, tmp_path / "l.duckdb"), env=NO_KEY)
    assert bad.exit_code == 1 and bad.stderr == f"Error: --base-url {url!r} {said} (e.g. http://127.0.0.1:8000/v1)\n"


def test_429_with_retry_after_and_500_then_success_are_retried(fast_retries):
    good = answer(body=recorded("openai_chat_direct"))
    script = [answer(429, recorded("openai_error_429"), {"retry-after": "0.25"}),
              answer(500, recorded("openai_error_500")), CLOSE, TRUNCATED, good]
    with replay_server(script) as (url, replay):
        assert backend(url).verdict_logprobs(["[]"], CHOICES)[0] is not None
    assert len(replay.requests) == 5
    assert fast_retries[0] == 0.25 and all(0 < w <= 8 for w in fast_retries[1:]) and len(fast_retries) == 4


@pytest.mark.parametrize("status, name, said", [
    (404, "openai_error_404", "HTTP 404: The model `gpt-4o-mini-typo` does not exist"),
    (404, "vllm_error_404", "HTTP 404: The model `qwen-typo` does not exist."),
    (500, "openai_error_500", "HTTP 500: The server had an error while processing your request."),
    (429, "openai_error_429", "HTTP 429: Rate limit reached for gpt-4o-mini"),
])
def test_an_error_that_retries_do_not_cure_is_one_error_line(tmp_path, status, name, said, fast_retries):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 1)
    with replay_server([answer(status, recorded(name))]) as (url, replay):
        bad = run(*args(url, db, pairs), env=NO_KEY)
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and said in bad.stderr, bad.stderr
    assert len(replay.requests) == (1 if status == 404 else 6)  # 5 retries of 429 and 5xx
    assert rows(db, "SELECT count(*) FROM judgments") == [(0,)]


def test_the_key_comes_from_the_environment_and_never_lands_in_the_store_or_an_error(tmp_path):
    db, pairs, key = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 1), "sk-test-SECRET"
    with replay_server([answer(401, recorded("openai_error_401"))]) as (url, replay):
        bad = run(*args(url, db, pairs), env={"LABELER_API_KEY": key})
    assert replay.requests[0]["_auth"] == f"Bearer {key}"
    assert bad.stderr == (f"Error: {url} refused the API key (HTTP 401): set LABELER_API_KEY or OPENAI_API_KEY to a "
                          "key it accepts\n")
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, _):
        run(*args(url, db), env={"LABELER_API_KEY": "", "OPENAI_API_KEY": key}, ok=True)
    assert key.encode() not in db.read_bytes() and b"SECRET" not in db.read_bytes()


def test_a_hang_past_the_timeout_and_a_refused_connection_are_one_error_line_each(tmp_path):
    with replay_server([HANG]) as (url, replay):
        judge = backend(url, timeout_s=0.3, retries=1)
        with pytest.raises(LabelerError, match="no answer within the timeout after 2 tries"):
            judge.verdict_logprobs(["[]"], CHOICES)
        assert len(replay.requests) == 2
    with replay_server([HANG]) as (url, _):
        pass
    with pytest.raises(LabelerError, match=f"cannot connect to {url} .*is the server running"):
        backend(url, retries=0).verdict_logprobs(["[]"], CHOICES)


def test_a_server_without_logprobs_is_one_error_line_in_direct_mode(tmp_path):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 1)
    with replay_server([answer(400, recorded("vllm_error_logprobs"))]) as (url, _):
        bad = run(*args(url, db, pairs), env=NO_KEY)
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and "direct mode reads the verdict" in bad.stderr
    with replay_server([answer(body={"choices": [{"message": {"content": "A"}}]})]) as (url, _):
        bad = run(*args(url, db), env=NO_KEY)  # a server that ignores `logprobs`
    assert bad.exit_code == 1 and "returns no log-probs, which direct mode reads the verdict from" in bad.stderr


# ---- cot --------------------------------------------------------------------------------------------------------------
def test_cot_takes_n_samples_in_one_request_where_the_server_gives_them():
    with replay_server([answer(body=recorded("openai_chat_cot_n2"))]) as (url, replay):
        judge = backend(url)
        out = judge.generate(["[]"], 2, SamplingParams(max_new_tokens=64, temperature=0.7), CHOICES, MARKER,
                             seeds=[[2**40 + 5, 9]])
    assert len(replay.requests) == 1 and replay.requests[0]["n"] == 2 and replay.requests[0]["seed"] == 5
    assert judge.multi_n is True
    first, second = out[0]
    assert first.text.endswith("[[A]]") and first.verdict_logprobs == (-0.105, -2.305) and not first.forced
    assert second.text.endswith("[[A]]") and second.verdict_logprobs is None


def test_cot_on_a_server_that_ignores_n_asks_per_sample_with_each_seed_and_forces_a_missing_verdict():
    def script(body):
        if body["messages"][-1]["content"] == FORCE_ASK:
            return answer(body=chat([("B", -0.3), ("A", -1.5)]))
        text = "A is right.\n[[A]]\nmore" if body["seed"] == 7 else "Hard to say."
        return answer(body={"choices": [{"message": {"content": text}, "logprobs": None}]})

    with replay_server(script) as (url, replay):
        judge = backend(url)
        out = judge.generate(['[{"role": "user", "content": "q"}]'], 2, SamplingParams(max_new_tokens=32), CHOICES,
                             MARKER, seeds=[[7, 8]])
    sampled = [(b.get("n"), b["seed"]) for b in replay.requests if b["max_tokens"] == 32]
    assert sampled == [(2, 7), (None, 8)] and judge.multi_n is False
    written, forced = out[0]
    assert written.text == "A is right.\n[[A]]\n" and not written.forced
    assert forced.text == "Hard to say.\nVerdict: [[B]]" and forced.forced and forced.verdict_logprobs == (-1.5, -0.3)
    asked = [b for b in replay.requests if b["max_tokens"] == 1][0]["messages"]
    assert asked[-2] == {"role": "assistant", "content": "Hard to say."}


def test_cot_annotate_over_chat_stores_votes(tmp_path):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    with replay_server([answer(body=recorded("openai_chat_cot_n2"))]) as (url, _):
        run(*args(url, db, pairs, "--mode", "cot", "-k", "2"), env=NO_KEY, ok=True)
    assert rows(db, "SELECT count(*), sum(votes_a + votes_b) FROM judgments") == [(2, 8)]


# ---- cost control -----------------------------------------------------------------------------------------------------
@pytest.fixture
def remote(monkeypatch):
    """The replay server, taken for a paid endpoint elsewhere."""
    monkeypatch.setattr("labeler.judge.backends.openai_client.Endpoint.is_local", property(lambda self: False))


def test_a_non_local_run_shows_its_cost_and_needs_yes_without_a_terminal(tmp_path, remote):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 3)
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, replay):
        bad = run(*args(url, db, pairs), env=NO_KEY)
        assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and replay.requests == []
        assert bad.stderr.startswith(f"Error: would send to {url}: 3 pairs, up to 6 requests, about ")
        assert "prompt tokens (estimated at 4 characters a token)" in bad.stderr and "pass --yes" in bad.stderr
        run(*args(url, db, "--yes"), env=NO_KEY, ok=True)
        assert len(replay.requests) == 6


def test_the_estimate_counts_with_the_tokenizers_chat_template_when_given(tmp_path, remote, monkeypatch):
    from labeler.cli import options

    seen = []
    monkeypatch.setattr(options, "confirm_cost", lambda estimate: seen.append(estimate) or False)
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 2)
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, replay):
        bad = run(*args(url, db, pairs, "--tokenizer", "default", "--api", "chat", "--mode", "cot", "-k", "3"),
                  env=NO_KEY)
    assert bad.exit_code == 1 and "not confirmed" in bad.stderr and replay.requests == []
    (estimate,) = seen
    assert (estimate.pairs, estimate.requests) == (2, 2 * 2 * 3 * 2)  # pairs, orders, samples, a verdict ask each
    assert estimate.counted_by == "the tokenizer's chat template" and 2 * 2 * 3 * 50 < estimate.prompt_tokens


def test_max_requests_stops_cleanly_and_the_rerun_resumes(tmp_path):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 5)
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, replay):
        first = run(*args(url, db, pairs, "--max-requests", "5"), env=NO_KEY, ok=True)
        assert len(replay.requests) == 4
        assert "--max-requests 5 covers 2 of 5 pending pairs" in first.stderr
        assert rows(db, "SELECT count(*) FROM judgments") == [(2,)]
        run(*args(url, db), env=NO_KEY, ok=True)
    assert rows(db, "SELECT count(*) FROM judgments") == [(5,)] and len(replay.requests) == 10


def test_the_request_budget_is_also_a_hard_cap_in_the_client():
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, replay):
        judge = backend(url, max_requests=3)
        with pytest.raises(LabelerError, match="stopped at --max-requests 3"):
            judge.verdict_logprobs(["[]"] * 5, CHOICES)
    assert len(replay.requests) == 3


def test_the_run_params_hold_no_key(tmp_path):
    db, pairs = tmp_path / "l.duckdb", write_pairs(tmp_path / "d.jsonl", 1)
    with replay_server([answer(body=recorded("openai_chat_direct"))]) as (url, _):
        run(*args(url, db, pairs), env={"OPENAI_API_KEY": "sk-live-XYZ", "LABELER_API_KEY": ""}, ok=True)
    (params,), = rows(db, "SELECT params FROM runs")
    assert "sk-live" not in json.dumps(params)
