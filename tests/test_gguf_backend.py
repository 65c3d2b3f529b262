"""`--model FILE.gguf` judged in process by llama-cpp-python (the gguf extra), on the GGUF file the default model is
converted from: the same direct labels as llama-cpp-python's server on the same file, cot with the verdict rule,
and one `Error:` line for a missing extra or a file llama.cpp cannot read."""

import sys
from pathlib import Path

import duckdb
import pytest

from helpers import run, write_pairs
from labeler.judge.backends import SamplingParams, make_backend
from labeler.judge.backends.weights import find_gguf
from labeler.judge.judge import CHOICES, MARKER
from labeler.judge.prompts import render
from schemas import Pair

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from llama_server import MODEL_NAME, llama_server  # noqa: E402

PAIRS = Path(__file__).resolve().parents[1] / "examples" / "pairs.jsonl"


@pytest.fixture(scope="module")
def gguf():
    backend = make_backend("transformers", model=str(find_gguf()), threads=1)
    backend.load()
    return backend


def prompts(backend, n: int) -> list[str]:
    import json

    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()[:n]]
    pairs = [Pair(pair_id=str(r["id"]), prompt=r["prompt"], response_a=r["response_a"], response_b=r["response_b"])
             for r in rows]
    return [backend.render_chat(**vars(render("direct", p, pos))) for p in pairs for pos in ("AB", "BA")]


def p_a(logprobs: tuple[float, float]) -> float:
    import math

    return 1 / (1 + math.exp(logprobs[1] - logprobs[0]))


def test_a_gguf_model_is_judged_in_process_with_the_same_direct_labels_as_the_server_path(gguf):
    """The same file through llama-cpp-python's server (`--api completions`, the prompt rendered by the default
    model's tokenizer): P(A) within 0.01 per order, and the prompts are the same text."""
    assert gguf.model_id.startswith("gguf:SmolLM2-135M-Instruct.Q4_1@")
    ours = prompts(gguf, 4)
    with llama_server() as url:
        server = make_backend("openai", model=MODEL_NAME, base_url=url, tokenizer="default", api="completions")
        server.load()
        theirs = prompts(server, 4)
        assert ours == theirs
        far = [abs(p_a(a) - p_a(b)) for a, b in zip(gguf.verdict_logprobs(ours, CHOICES),
                                                    server.verdict_logprobs(theirs, CHOICES))]
    print(f"gguf in process vs llama.cpp server: max |P(A) diff| {max(far):.4f} over {len(far)} orders")
    assert max(far) < 0.01, far


def test_cot_follows_the_verdict_rule_and_a_seed_gives_the_same_sample(gguf):
    prompt = prompts(gguf, 1)[0].removesuffix("Verdict: [[")
    params = SamplingParams(max_new_tokens=24, temperature=1.0)
    first = gguf.generate([prompt], 2, params, CHOICES, MARKER, seeds=[[11, 12]])[0]
    again = gguf.generate([prompt], 1, params, CHOICES, MARKER, seeds=[[11]])[0]
    assert again[0].text == first[0].text
    for sample in first:  # written or forced, each ends in a verdict with the letters' log-probs
        assert sample.text.rstrip().endswith(("[[A]]", "[[B]]")) and sample.verdict_logprobs is not None


def test_annotate_with_a_gguf_file(tmp_path):
    db = tmp_path / "l.duckdb"
    run("annotate", write_pairs(tmp_path / "d.jsonl", 2), "--db", db, "--model", find_gguf(), "-q", ok=True)
    with duckdb.connect(str(db), read_only=True) as con:
        ids = con.execute("SELECT DISTINCT judge_id, count(*) FROM judgments GROUP BY 1").fetchall()
    assert len(ids) == 1 and ids[0][0].startswith("gguf:") and ids[0][1] == 2


def test_a_file_llama_cpp_cannot_read_and_a_missing_extra_are_one_error_line(tmp_path, monkeypatch):
    bad = tmp_path / "judge.gguf"
    bad.write_bytes(b"not a gguf file")
    result = run("annotate", write_pairs(tmp_path / "d.jsonl", 1), "--db", tmp_path / "l.duckdb", "--model", bad)
    assert result.exit_code == 1 and result.stderr.startswith(f"Error: --model {bad}: llama.cpp cannot load it")
    assert result.stderr.count("\n") == 1
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    result = run("annotate", "--db", tmp_path / "l.duckdb", "--model", bad)
    assert result.exit_code == 1 and result.stderr.startswith("Error: a .gguf judge in process needs the gguf extra")
