"""Rankings in review: `labeler review push --rankings` sends the prompts whose ranking is in doubt to Argilla as a
RankingQuestion (one dataset per number of responses, the judge's order suggested); `review pull --rankings` stores
each reviewer's order as human labels on every pair of responses, which export, eval and retrain then read."""

import json
import math
from datetime import datetime

import httpx
import pytest

from argilla_session import session_server
from helpers import query, run, write_pairs
from labeler.review.routing import MOST_DOUBTFUL, TOP_TWO_OVERLAP, RoutingRules, route_rankings
from labeler.store import Store
from schemas.rankings import RankAnswer, ResponseScore


def write_groups(path, sizes, start=0):
    """One prompt per size, with that many responses."""
    path.write_text("".join(json.dumps({"id": f"q{g}", "prompt": f"Question {g}?",
                                        "responses": [f"answer {k} to question {g}" for k in range(n)]}) + "\n"
                            for g, n in enumerate(sizes, start)))
    return path


def ranked_db(tmp_path, sizes=(3, 3, 4), start=0, db=None, budget=()):
    """A store whose prompts the fake pairwise judge ranked (its Bradley-Terry intervals all overlap)."""
    db = db or tmp_path / "r.duckdb"
    run("rank", write_groups(tmp_path / f"g{start}.jsonl", sizes, start), "--db", db, "--backend", "fake", "-q",
        *(("--budget", budget) if budget else ()), ok=True)
    return db


def scores(group, values, uncertainty=None):
    return [ResponseScore(group_id=group, idx=i, judge_key="k", judge_id="j", method="bt", score=v,
                          uncertainty=uncertainty, comparisons=3, run_id="r") for i, v in enumerate(values)]


def exported(db, tmp_path):
    out = tmp_path / "ranked.jsonl"
    run("export", "--db", db, "--rankings", "--out", out, ok=True)
    return {r["group_id"]: r for r in map(json.loads, out.read_text().splitlines())}


# ---- without a server --------------------------------------------------------------------------------------------

def test_a_ranking_is_in_doubt_when_its_best_two_overlap_and_a_budget_takes_the_least_sure():
    candidates = {"close": scores("close", [0.0, 2.0, 1.8], 0.5),      # best two 0.2 apart, sd 0.71: z 0.28
                  "clear": scores("clear", [3.0, 0.0, -1.0], 0.5),     # 3.0 apart: z 4.2
                  "middle": scores("middle", [1.5, 0.0], 0.5),         # z 2.1: just clear
                  "no_sd": scores("no_sd", [1.0, 0.5]),                # a reward judge without spread: not in doubt
                  "no_sd_tie": scores("no_sd_tie", [0.5, 0.5, 0.0])}   # ... unless its best two tie
    routes = {r.group_id: r for r in route_rankings(candidates, RoutingRules(audit_rate=0))}
    assert set(routes) == {"close", "no_sd_tie"}
    close = routes["close"]
    assert close.judge_order == [1, 2, 0] and close.n == 3 and close.route_reason == TOP_TWO_OVERLAP
    assert close.margin == pytest.approx(0.2) and close.z == pytest.approx(0.2 / math.hypot(0.5, 0.5))
    assert routes["no_sd_tie"].z is None and routes["no_sd_tie"].judge_order == [0, 1, 2]
    budget = route_rankings(candidates, RoutingRules(most=3, audit_rate=0))
    assert [(r.group_id, r.route_reason) for r in budget] == [
        ("close", TOP_TWO_OVERLAP), ("middle", MOST_DOUBTFUL), ("clear", MOST_DOUBTFUL)]
    audited = route_rankings(candidates, RoutingRules(audit_rate=1.0))
    assert {r.group_id for r in audited if r.route_reason == "audit"} == {"clear", "middle", "no_sd"}


def test_an_order_becomes_a_human_label_on_every_pair_and_the_export_follows_it(tmp_path):
    db = ranked_db(tmp_path, sizes=(4,), budget=3)
    with Store(db) as store:
        (group,) = store.groups()
        gid = group.group_id
        linked = store.group_pairs([gid])[gid]
        assert len(linked) < 6  # the sparse design left pairs uncompared (they are made on pull)
        store.queue_rankings_for_review("rev", route_rankings(store.rank_review_candidates("rev"),
                                                              RoutingRules(audit_rate=0)))
        store.mark_rankings_pushed("rev", [gid])
        when = datetime(2026, 1, 1)
        # ann: 2 best, then 0 and 3 tied, 1 last; bob's draft never arrives; cy discards
        answers = [RankAnswer(group_id=gid, reviewer="ann", status="submitted", ranks={2: 1, 0: 2, 3: 2, 1: 3},
                              answered_at=when),
                   RankAnswer(group_id=gid, reviewer="cy", status="discarded", answered_at=when)]
        counts = store.save_ranking_answers("rev", 4, answers, [gid, "g-not-here"])
        assert (counts.records_seen, counts.submitted, counts.discarded, counts.new_labels, counts.unknown_pairs) == \
            (2, 1, 1, 6, 1)
        (judge_best,) = [row[0] for row in store.con.execute("SELECT judge_order[1] FROM rank_review_items").fetchall()]
        assert (counts.top_decided, counts.top_agreed) == (1, judge_best == 2)
        links = store.group_pairs([gid])[gid]
        assert len(links) == 6  # every pair now stored and linked to its group
        assert store.rank_review_candidates("rev") == {}  # a human-ranked group is never routed again
    verdicts = {}
    for a, b, label, annotator, origin in query(db, "SELECT r.idx_a, r.idx_b, g.label, g.annotator, g.origin FROM "
                                                    "gold_labels g JOIN rank_pairs r USING (pair_id)"):
        assert (annotator, origin) == ("ann", "argilla:rev-rankings-4")
        winner = {"A": a, "B": b, "tie": None}[label]
        verdicts[frozenset((a, b))] = winner
    assert verdicts == {frozenset((2, 0)): 2, frozenset((2, 3)): 2, frozenset((2, 1)): 2, frozenset((0, 3)): None,
                        frozenset((0, 1)): 0, frozenset((3, 1)): 3}
    assert query(db, "SELECT status FROM rank_review_items") == [("answered",)]
    row = exported(db, tmp_path)[gid]
    assert row["ranked_by"] == "human" and row["method"] is None
    assert [(r["idx"], r["score"]) for r in row["responses"]] == [(2, 3.0), (0, 1.5), (3, 1.5), (1, 0.0)]
    dpo = tmp_path / "dpo.jsonl"
    run("export", "--db", db, "--dpo", "--pairs", "all", "--out", dpo, ok=True)
    assert len(dpo.read_text().splitlines()) == 5  # six pairs less the tie

    with Store(db) as store:  # ann withdraws her answer (discards the record): her labels go, the pairs stay
        counts = store.save_ranking_answers(
            "rev", 4, [RankAnswer(group_id=gid, reviewer="ann", status="discarded", answered_at=when)], [gid])
        assert (counts.withdrawn_labels, counts.new_labels) == (6, 0)
    assert query(db, "SELECT count(*) FROM gold_labels") == [(0,)]
    assert query(db, "SELECT status FROM rank_review_items") == [("discarded",)]
    assert exported(db, tmp_path)[gid]["ranked_by"] == "model"


def test_rankings_and_suspects_are_one_or_the_other(tmp_path):
    db = ranked_db(tmp_path, sizes=(3,))
    result = run("review", "push", "--db", db, "--rankings", "--suspects", "--url", "http://127.0.0.1:1",
                 "--api-key", "k")
    assert result.exit_code == 2 and "choose one" in result.output


# ---- against the session's server -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    return session_server(request, tmp_path_factory)


def answer(server, reviewer, dataset, group_id, order, status="submitted"):
    """Respond to a ranking record as `reviewer` through the SDK: `order` lists response numbers (1-based) best
    first; a tuple inside it is a tie."""
    from argilla._models import UserResponseModel

    record_id = next(r["id"] for r in server.records(dataset) if r["external_id"] == group_id)
    ranks = [{"value": f"response_{k}", "rank": rank}
             for rank, entry in enumerate(order, 1) for k in (entry if isinstance(entry, tuple) else (entry,))]
    values = {"ranking": {"value": ranks}} if status != "discarded" else {}
    reviewer.api.records.create_record_response(
        record_id, UserResponseModel(values=values, status=status, user_id=reviewer.me.id))


def test_ranking_round_trip_through_argilla(server, tmp_path):
    db = ranked_db(tmp_path, budget=3)
    ds = ["--dataset", "ranks", *server.cli_args()]
    early = run("review", "pull", "--db", db, "--rankings", *ds)
    assert early.exit_code == 1 and early.stderr == ("Error: no rankings were pushed to review under 'ranks' from "
                                                     "this database (run `labeler review push --rankings` first)\n")
    pushed = run("review", "push", "--db", db, "--rankings", "--audit-rate", "0", *ds)
    assert pushed.exit_code == 0, pushed.output
    assert "newly routed rankings: 3 top_two_overlap" in pushed.stdout
    assert "pushed 2 to 'ranks-rankings-3', 1 to 'ranks-rankings-4'" in pushed.stdout
    with Store(db) as store:
        groups = {g.group_id: g for g in store.groups()}
        judged = {g: sorted(s, key=lambda x: (-x.score, x.idx)) for g, s in store.rank_scores().items()}
    three, four = server.records("ranks-rankings-3"), server.records("ranks-rankings-4")
    assert len(three) == 2 and len(four) == 1
    for record in three + four:
        group = groups[record["external_id"]]
        n = len(group.responses)
        assert record["fields"] == {"prompt": group.prompt,
                                    **{f"response_{i + 1}": r.text for i, r in enumerate(group.responses)}}
        (suggestion,) = record["suggestions"]
        order = [s.idx for s in judged[group.group_id]]
        assert [v["value"] for v in suggestion["value"]] == [f"response_{i + 1}" for i in order]
        assert record["metadata"]["n"] == n and record["metadata"]["route_reason"] == "top_two_overlap"
        best, second = judged[group.group_id][:2]
        assert record["metadata"]["margin"] == pytest.approx(best.score - second.score)
        assert suggestion["agent"] == record["metadata"]["judge"] and best.judge_key in suggestion["agent"]

    again = run("review", "push", "--db", db, "--rankings", *ds)
    assert again.exit_code == 0 and "pushed 0 records" in again.stdout
    ranked_db(tmp_path, sizes=(3,), start=10, db=db)  # a new prompt: only it is sent
    more = run("review", "push", "--db", db, "--rankings", "--audit-rate", "0", *ds)
    assert more.exit_code == 0 and "pushed 1 to 'ranks-rankings-3'" in more.stdout
    ids = [r["external_id"] for r in server.records("ranks-rankings-3")]
    assert len(ids) == len(set(ids)) == 3

    first, second = sorted(r["external_id"] for r in three)
    (big,) = [r["external_id"] for r in four]
    ann, bob = server.add_reviewer("rank-ann"), server.add_reviewer("rank-bob")
    answer(server, ann, "ranks-rankings-3", first, [3, 1, 2])
    answer(server, ann, "ranks-rankings-4", big, [4, (1, 2), 3])  # 1 and 2 tied
    answer(server, bob, "ranks-rankings-3", second, [], status="discarded")
    answer(server, bob, "ranks-rankings-4", big, [1, 2, 3, 4], status="draft")
    pulled = run("review", "pull", "--db", db, "--rankings", *ds)
    assert pulled.exit_code == 0, pulled.output
    assert "4 ranking records in 'ranks-rankings-3', 'ranks-rankings-4': 2 submitted orders, 1 discarded" \
        in pulled.stdout
    assert "human pair labels: 9 new, 0 changed, 0 withdrawn" in pulled.stdout  # 3 + 6 pairs
    judge_best = {g: s[0].idx for g, s in judged.items()}
    agreed = (judge_best[first] == 2) + (judge_best[big] == 3)
    assert f"judge's best response was among the reviewer's best in {agreed}/2" in pulled.stdout
    gold = query(db, "SELECT r.group_id, r.idx_a, r.idx_b, g.label, g.annotator FROM gold_labels g "
                     "JOIN rank_pairs r USING (pair_id) ORDER BY ALL")
    rank = {2: 1, 0: 2, 1: 3}  # [3, 1, 2]: response 3 (idx 2) best
    mine = [(a, b, label) for g, a, b, label, _ in gold if g == first]
    assert len(mine) == 3 and all(label == ("A" if rank[a] < rank[b] else "B") for a, b, label in mine)
    assert {annotator for *_, annotator in gold} == {"rank-ann"} and second not in {g for g, *_ in gold}
    ties = [(a, b) for g, a, b, label, _ in gold if label == "tie"]
    assert len(ties) == 1 and set(ties[0]) == {0, 1} and len([g for g in gold if g[0] == big]) == 6

    rows = exported(db, tmp_path)
    assert rows[first]["ranked_by"] == "human"
    assert [r["idx"] for r in rows[first]["responses"]] == [2, 0, 1]
    assert [r["idx"] for r in rows[big]["responses"]][0] == 3 and rows[big]["responses"][-1]["idx"] == 2
    assert rows[second]["ranked_by"] == "model"  # discarded: still the judge's
    twice = run("review", "pull", "--db", db, "--rankings", *ds)
    assert "human pair labels: 0 new, 0 changed, 0 withdrawn" in twice.stdout
    assert query(db, "SELECT status, count(*) FROM rank_review_items GROUP BY ALL ORDER BY ALL") == [
        ("answered", 2), ("discarded", 1), ("pushed", 1)]


def test_a_ranking_push_that_dies_mid_way_sends_the_rest_on_rerun(server, tmp_path, monkeypatch):
    from labeler.review import rank_argilla

    db = ranked_db(tmp_path, sizes=(3,) * 5)
    args = ["--db", db, "--rankings", "--audit-rate", "0", "--batch-size", "2", "--dataset", "ranks-killed",
            *server.cli_args()]
    real, sent = rank_argilla._to_argilla, []

    def connection_lost_at_the_fifth(record):
        if len(sent) == 4:
            raise httpx.ConnectError("connection refused")
        sent.append(record.group_id)
        return real(record)

    monkeypatch.setattr(rank_argilla, "_to_argilla", connection_lost_at_the_fifth)
    died = run("review", "push", *args)
    assert died.exit_code == 1  # after the progress bar, one error line
    assert died.stderr.splitlines()[-1].startswith("Error: push stopped after 4 of 5 ranking records (connection")
    assert len(server.records("ranks-killed-rankings-3")) == 4
    monkeypatch.setattr(rank_argilla, "_to_argilla", real)
    rerun = run("review", "push", *args)
    assert rerun.exit_code == 0 and "pushed 1 to 'ranks-killed-rankings-3'" in rerun.stdout
    ids = [r["external_id"] for r in server.records("ranks-killed-rankings-3")]
    assert len(ids) == len(set(ids)) == 5


@pytest.mark.usefixtures("no_starter")
def test_retrain_trains_on_the_pairs_a_reviewers_order_implies(server, tmp_path, tiny_llama):
    db = ranked_db(tmp_path, sizes=(4,))
    ds = ["--dataset", "ranks-retrain", *server.cli_args()]
    assert run("review", "push", "--db", db, "--rankings", *ds).exit_code == 0
    (record,) = server.records("ranks-retrain-rankings-4")
    answer(server, server.add_reviewer("rank-cy"), "ranks-retrain-rankings-4", record["external_id"], [2, 4, 1, 3])
    assert run("review", "pull", "--db", db, "--rankings", *ds).exit_code == 0
    implied = {p for (p,) in query(db, "SELECT pair_id FROM gold_labels")}
    assert len(implied) == 6
    result = run("retrain", "--db", db, "--gold", write_pairs(tmp_path / "gold.jsonl", 10, labeled=True),
                 "--model", tiny_llama, "--method", "bt", "--max-steps", "2", "--learning-rate", "1e-2",
                 "--heldout-fraction", "0.5", "--force", "--json", "-q", ok=True)
    split = dict(query(db, "SELECT pair_id, split FROM gold_split"))
    assert implied <= split.keys()  # the implied pairs are gold pairs like any other (one prompt: one split)
    assert len({split[p] for p in implied}) == 1
    trained = json.loads(result.stdout)
    assert trained["train_pairs"] == sum(s == "train" for s in split.values())
