"""`labeler rank`: groups of N responses detected at ingest, ranked by a pairwise judge (sparse design, stored as
ordinary pairs, resumable) or a reward judge (one read per response), exported as rankings or DPO pairs, and
evaluated against human ratings or votes."""

import json
import math
import re

import pytest

from helpers import run
from labeler.ingestion import ingest_files
from labeler.judge import design
from labeler.store import Store


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def samples(path, groups=2, n=8, start=0):
    """Prompts with `n` responses each; response k says how good it is (the oracle judge below reads it)."""
    return write_jsonl(path, [{"id": f"q{g}", "prompt": f"Question {g}?",
                               "responses": [f"answer {k} to {g} quality={(k * 5 + g) % n}" for k in range(n)]}
                              for g in range(start, start + groups)])


class OracleBackend:
    """A pairwise judge that knows the truth: prefers the shown response with the higher `quality=` mark."""

    model_id = "oracle"

    def __init__(self, **_):
        pass

    def load(self):
        pass

    def render_chat(self, system, user, assistant_prefix):
        return user + assistant_prefix

    def verdict_logprobs(self, prompts, choices):
        out = []
        for prompt in prompts:
            first, second = (int(q) for q in re.findall(r"quality=(\d+)", prompt)[:2])
            p = 1 / (1 + math.exp(-2.0 * (first - second)))
            out.append((math.log(max(p, 1e-9)), math.log(max(1 - p, 1e-9))))
        return out


@pytest.fixture
def oracle(monkeypatch):
    """The oracle judge in the place of the `fake` backend: --backend takes only the names the CLI was built with."""
    from labeler.judge import backends

    monkeypatch.setitem(backends.BACKENDS, "fake", "test_rank:OracleBackend")


def test_the_layouts_with_several_responses_become_groups(tmp_path):
    plain = write_jsonl(tmp_path / "plain.jsonl", [
        {"prompt": "Say hi.", "responses": ["hi", "hello", {"role": "assistant", "content": "hey"}]},
        {"prompt": "Say bye.", "responses": ["bye"]},                                   # 2: one response
        {"prompt": "Again.", "responses": "hi"},                                        # 3: not a list
        {"prompt": "Twice.", "responses": ["same", "same"]}])                           # 4: repeated
    uf = write_jsonl(tmp_path / "uf.jsonl", [  # UltraFeedback completions without ratings, and with
        {"instruction": "Write a haiku.", "completions": [{"model": "m1", "response": "one"},
                                                          {"model": "m2", "response": "two"}]},
        {"instruction": "Rated.", "completions": [{"response": "good", "overall_score": 9},
                                                  {"response": "bad", "overall_score": 2},
                                                  {"response": "ok", "overall_score": 5}]}])
    trl = write_jsonl(tmp_path / "trl.jsonl", [  # TRL prompt/completions, conversational
        {"prompt": [{"role": "user", "content": "2+2?"}],
         "completions": [[{"role": "assistant", "content": "4"}], [{"role": "assistant", "content": "5"}]]}])
    with Store(tmp_path / "s.duckdb") as store:
        reports = ingest_files(store, [plain, uf, trl])
        assert [(r.layout, r.groups) for r in reports] == [("responses", 1), ("ultrafeedback", 2),
                                                           ("ultrafeedback", 1)]
        assert [(q.line, q.field, q.reason) for q in store.quarantine_rows()] == [
            (2, "responses", "needs at least two responses with a text, got 1"),
            (3, "responses", "must be a list of responses, got string"),
            (4, "responses", "holds the same response twice")]
        groups = {g.prompt: g for g in store.groups()}
        assert [r.text for r in groups["Say hi."].responses] == ["hi", "hello", "hey"]
        assert [r.model for r in groups["Write a haiku."].responses] == ["m1", "m2"]
        assert [r.rating for r in groups["Rated."].responses] == [9, 2, 5]  # ratings are human gold
        assert groups["2+2?"].prompt_messages[0].content == "2+2?"
        # the rated group made its gold pairs (3 different ratings: 3 pairs), linked to the group
        assert reports[1].counts.gold_labels == 3 and store.count("rank_pairs") == 3
        assert sorted(h[3] for h in store.human_group_pairs([groups["Rated."].group_id])) in (
            ["A", "A", "B"], ["A", "B", "B"], ["A", "A", "A"], ["B", "B", "B"], ["A", "B", "A"])


def test_a_pairwise_judge_compares_the_designs_pairs_stored_as_ordinary_pairs(tmp_path):
    db = tmp_path / "r.duckdb"
    data = samples(tmp_path / "s.jsonl", groups=2, n=8)
    write_jsonl(tmp_path / "small.jsonl", [{"prompt": "Small?", "responses": ["a", "b", "c"]}])
    result = run("rank", data, tmp_path / "small.jsonl", "--db", db, "--backend", "fake", "--quiet", ok=True)
    with Store(db) as store:
        scores = store.rank_scores()
        assert sorted(len(v) for v in scores.values()) == [3, 8, 8]
        assert sorted({s.comparisons for v in scores.values() for s in v}) == [3, design.default_budget(8)]
        # every comparison is an ordinary pair with an ordinary judgment (both orders) under the same judge key
        key = next(iter(scores.values()))[0].judge_key
        assert store.count("rank_pairs") == store.count("pairs") == store.count("judgments") == 3 + 2 * 10
        assert {s.verdict is not None for s in store.samples_for(store.group_pairs(list(scores))[next(iter(scores))]
                                                                  .popitem()[1], key)} == {True}
        assert all(s.uncertainty > 0 and s.method == "bt" for v in scores.values() for s in v)
    again = run("rank", "--db", db, "--backend", "fake", ok=True)
    assert "Nothing to rank" in again.output
    assert result.exit_code == 0


def test_a_killed_rank_run_resumes_to_the_rankings_of_an_uninterrupted_run(tmp_path, monkeypatch):
    from labeler import api
    from labeler.judge.judge import Judge
    from labeler.ranking import run as ranking

    monkeypatch.setattr(ranking, "GROUPS_PER_COMMIT", 2)
    data = samples(tmp_path / "s.jsonl", groups=4, n=6)
    whole = api.rank(tmp_path / "whole.duckdb", [data], backend="fake", batch_size=4)
    real, calls = Judge.judge, []

    def dies_in_the_second_chunk(self, pairs, run_id, progress=None):
        calls.append(len(pairs))
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(self, pairs, run_id, progress)

    monkeypatch.setattr(Judge, "judge", dies_in_the_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        api.rank(tmp_path / "killed.duckdb", [data], backend="fake", batch_size=4)
    monkeypatch.setattr(Judge, "judge", real)
    with Store(tmp_path / "killed.duckdb") as store:
        assert store.count("rank_scores") == 2 * 6  # the first chunk of two groups was committed
    resumed = api.rank(tmp_path / "killed.duckdb", [data], backend="fake", batch_size=4)
    assert len(resumed.ranked) == 2  # the committed groups are not ranked again
    assert resumed.judge_calls < whole.judge_calls / 2  # nor are the judged pairs of the killed chunk

    def table(db):
        with Store(db) as store:
            return (sorted((s.group_id, s.idx, round(s.score, 12), round(s.uncertainty, 12), s.comparisons)
                           for v in store.rank_scores().values() for s in v),
                    sorted(r[0] for r in store.con.execute("SELECT pair_id FROM judgments").fetchall()))

    assert table(tmp_path / "killed.duckdb") == table(tmp_path / "whole.duckdb")


def test_exports_rankings_and_dpo_pairs_of_each_kind(tmp_path, oracle):
    db = tmp_path / "r.duckdb"
    run("rank", samples(tmp_path / "s.jsonl", groups=3, n=4), "--db", db, "--backend", "fake", "-q", ok=True)
    run("export", "--db", db, "--rankings", "--out", tmp_path / "ranked.jsonl", ok=True)
    rows = [json.loads(x) for x in (tmp_path / "ranked.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        ranked = row["responses"]
        assert [r["rank"] for r in ranked] == [1, 2, 3, 4]
        assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)
        assert [int(r["text"].rsplit("=", 1)[1]) for r in ranked] == [3, 2, 1, 0]  # the oracle's truth
        assert row["ranked_by"] == "model" and row["method"] == "bt" and row["comparisons"] == 6
        assert all(r["uncertainty"] > 0 for r in ranked)
        assert row["near_tie"] == (row["margin"] < 1.96 * math.hypot(ranked[0]["uncertainty"],
                                                                        ranked[-1]["uncertainty"]))
    counts = {}
    for mode in ("best-worst", "best-rest", "all", "adjacent"):
        out = tmp_path / f"{mode}.jsonl"
        run("export", "--db", db, "--dpo", "--pairs", mode, "--out", out, ok=True)
        found = [json.loads(x) for x in out.read_text().splitlines()]
        assert all(set(r) == {"prompt", "chosen", "rejected"} for r in found)
        assert all(int(r["chosen"][-1]) > int(r["rejected"][-1]) for r in found)
        counts[mode] = len(found)
    assert counts == {"best-worst": 3, "best-rest": 9, "all": 18, "adjacent": 9}
    # the oracle orders every group alike, so their margins are equal: a group of 3 responses adds a smaller one
    run("rank", samples(tmp_path / "s3.jsonl", groups=1, n=3, start=3), "--db", db, "--backend", "fake", "-q", ok=True)
    run("export", "--db", db, "--rankings", "--out", tmp_path / "ranked4.jsonl", ok=True)
    margins = sorted({r["margin"] for r in map(json.loads, (tmp_path / "ranked4.jsonl").read_text().splitlines())})
    assert len(rows) == 3 and margins[0] < margins[-1] - 1e-6
    run("export", "--db", db, "--dpo", "--pairs", "best-worst", "--min-margin", (margins[0] + margins[-1]) / 2,
        "--out", tmp_path / "margin.jsonl", ok=True)
    kept = [json.loads(x) for x in (tmp_path / "margin.jsonl").read_text().splitlines()]
    assert len(kept) == 3 and "Question 3?" not in {r["prompt"] for r in kept}
    bad = run("export", "--db", db, "--pairs", "all", "--out", tmp_path / "x.jsonl")
    assert bad.exit_code == 2 and "--dpo --pairs" in bad.output
    assert run("export", "--db", db, "--dpo", "--pairs", "some", "--out", tmp_path / "x.jsonl").exit_code == 2


def test_rated_groups_export_by_their_human_ratings(tmp_path):
    db = tmp_path / "r.duckdb"
    write_jsonl(tmp_path / "uf.jsonl", [{"prompt": "Rate?", "completions": ["low", "high", "mid"], "ratings": [1, 9, 5]}])
    run("ingest", tmp_path / "uf.jsonl", "--db", db, ok=True)
    run("export", "--db", db, "--rankings", "--out", tmp_path / "r.jsonl", ok=True)
    (row,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert row["ranked_by"] == "human" and [r["text"] for r in row["responses"]] == ["high", "mid", "low"]


def test_eval_rank_against_a_known_truth_from_ratings_and_from_pair_votes(tmp_path, oracle):
    rated = write_jsonl(tmp_path / "rated.jsonl", [
        {"prompt": f"Q{g}?", "responses": [{"text": f"r{k} quality={(k + g) % 6}", "rating": (k + g) % 6}
                                           for k in range(6)]} for g in range(4)])
    result = run("eval", rated, "--rank", "--db", tmp_path / "e.duckdb", "--backend", "fake", "--out",
                 tmp_path / "ev", ok=True)
    metrics = json.loads((tmp_path / "ev" / "rank_metrics.json").read_text())
    assert metrics["groups"] == 4 and metrics["pairs"] == 4 * 15 and metrics["method"] == "bt"
    assert metrics["top1"] == 1.0 and metrics["top1_chance"] == pytest.approx(1 / 6)
    assert metrics["pairwise_agreement"] > 0.8 and metrics["kendall_tau"] > 0.6
    assert "Kendall" in result.output
    # human votes on pairs that share a prompt (as MT-Bench): each prompt's responses become one group
    votes = write_jsonl(tmp_path / "votes.jsonl", [
        {"prompt": "Shared?", "response_a": "x quality=3", "response_b": "y quality=1", "label": "A"},
        {"prompt": "Shared?", "response_a": "z quality=2", "response_b": "x quality=3", "label": "B"},
        {"prompt": "Shared?", "response_a": "y quality=1", "response_b": "z quality=2", "label": "B"},
        {"prompt": "Other?", "response_a": "u quality=0", "response_b": "v quality=4", "label": "B"}])
    run("eval", votes, "--rank", "--db", tmp_path / "v.duckdb", "--backend", "fake", "--out", tmp_path / "ev2",
        ok=True)
    metrics = json.loads((tmp_path / "ev2" / "rank_metrics.json").read_text())
    assert (metrics["groups"], metrics["pairs"], metrics["pairwise_agreement"], metrics["top1"]) == (2, 4, 1.0, 1.0)
    assert metrics["kendall_tau"] == 1.0
    printed = run("eval", votes, "--rank", "--db", tmp_path / "v.duckdb", "--backend", "fake", "--json", ok=True)
    again = json.loads(printed.stdout)  # --json prints the metrics, and nothing else
    assert again.pop("judge_calls") == 0 and again == {k: v for k, v in metrics.items() if k != "judge_calls"}
