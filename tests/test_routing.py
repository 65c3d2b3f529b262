"""Routing rules (pure) and the review queue / answer bookkeeping in the store (no Argilla server needed)."""

import json
from datetime import datetime

import duckdb
import pytest
from typer.testing import CliRunner

from helpers import write_pairs
from labeler.cli import app
from labeler.review.routing import RoutingRules, audit_draw, doubt_reason, route
from labeler.store import Store
from schemas import ReviewAnswer, RoutingCandidate, StatusReport

runner = CliRunner()


def cand(pair_id="p", label="A", confidence=0.9, votes=(5, 1), consistent=True) -> RoutingCandidate:
    return RoutingCandidate(pair_id=pair_id, judge_key="k", judge_id="j", label=label, confidence=confidence,
                            votes_a=votes[0], votes_b=votes[1], order_consistent=consistent)


@pytest.mark.parametrize("candidate, reason", [
    (cand(label=None, confidence=0.5, votes=(0, 0), consistent=None), "undecided"),
    (cand(consistent=False), "order_inconsistent"),
    (cand(confidence=0.5, votes=(3, 3)), "split_votes"),
    (cand(confidence=0.69), "low_confidence"),
    (cand(confidence=0.7), None),
    (cand(confidence=0.95, consistent=None), None),  # one order abstained: not a disagreement
])
def test_doubt_reasons(candidate, reason):
    assert doubt_reason(candidate, threshold=0.7) == reason


def test_undecided_outranks_other_reasons():
    assert doubt_reason(cand(label=None, consistent=False, confidence=0.1), 0.7) == "undecided"


def test_audit_sample_is_seeded_stable_and_near_the_rate():
    confident = [cand(f"p{i}") for i in range(2000)]
    rules = RoutingRules(threshold=0.7, audit_rate=0.1, seed=3)
    first = {r.candidate.pair_id for r in route(confident, rules)}
    assert 150 < len(first) < 250
    # adding pairs never changes the draw of the old ones; another seed draws another sample
    more = {r.candidate.pair_id for r in route(confident + [cand(f"q{i}") for i in range(500)], rules)}
    assert more & first == first and more - first
    assert {r.candidate.pair_id for r in route(confident, RoutingRules(0.7, 0.1, seed=4))} != first
    assert all(r.reason == "audit" for r in route(confident, rules))
    assert route(confident, RoutingRules(audit_rate=0.0)) == []
    assert 0.0 <= audit_draw("p1", 0) < 1.0


def test_doubtful_come_before_audit_and_bad_rules_are_refused():
    routes = route([cand("sure", confidence=1.0), cand("unsure", confidence=0.5)], RoutingRules(audit_rate=1.0))
    assert [(r.candidate.pair_id, r.reason) for r in routes] == [("unsure", "low_confidence"), ("sure", "audit")]
    for bad in (dict(threshold=1.5), dict(audit_rate=-0.1)):
        with pytest.raises(ValueError):
            RoutingRules(**bad)


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "l.duckdb"
    result = runner.invoke(app, ["annotate", str(write_pairs(tmp_path / "d.jsonl", 12)), "--db", str(db),
                                 "--backend", "fake", "--mode", "cot", "-k", "3"])
    assert result.exit_code == 0, result.output
    with Store(db) as s:
        yield s


def answer(pair_id, reviewer, label, note=None, status="submitted"):
    return ReviewAnswer(pair_id=pair_id, reviewer=reviewer, status=status, label=label, note=note,
                        answered_at=datetime(2026, 1, 2, 3, 4, 5))


def queue_all(store, dataset="ds"):
    routes = route(store.review_candidates(dataset), RoutingRules(threshold=1.0, audit_rate=1.0))
    assert store.queue_for_review(dataset, routes) == len(routes)
    store.mark_review_pushed(dataset, [r.candidate.pair_id for r in routes])
    return routes


def gold(store):
    return store.con.execute("SELECT pair_id, annotator, label, note, origin FROM gold_labels ORDER BY ALL").fetchall()


def test_queue_skips_queued_and_human_labelled_pairs(store):
    assert store.status().review.model_dump() == {"routed": 0, "pushed": 0, "answered": 0, "discarded": 0}
    routes = queue_all(store)
    assert len(routes) == 12 and store.review_candidates("ds") == []
    assert len(store.review_candidates("other")) == 12  # queues are per dataset
    assert store.review_records_to_push("ds") == []
    store.con.execute("INSERT INTO gold_labels (pair_id, label, annotator, origin) VALUES ('p000', 'A', 'x', 'file')")
    assert "p000" not in {c.pair_id for c in store.review_candidates("other")}
    assert store.review_queue().model_dump() == {"routed": 12, "pushed": 12, "answered": 0, "discarded": 0}


def test_records_to_push_carry_the_judgment_shown_to_reviewers(store):
    routes = route(store.review_candidates("ds"), RoutingRules(threshold=1.0, audit_rate=1.0))
    store.queue_for_review("ds", routes)
    records = store.review_records_to_push("ds", limit=5)
    assert len(records) == 5
    r = records[0]
    assert r.prompt.startswith("What is") and r.judge_id == "fake:default" and r.judge_rationale
    assert r.route_reason == next(x.reason for x in routes if x.candidate.pair_id == r.pair_id)
    store.mark_review_pushed("ds", [x.pair_id for x in records])
    assert store.review_unpushed("ds") == 7
    assert store.forget_review_pushes("ds") == 5 and store.review_unpushed("ds") == 12


def test_answers_sync_without_duplicates_and_outrank_model_labels(store, tmp_path):
    queue_all(store)
    answers = [answer("p001", "ann", "B", "B is right"), answer("p001", "bob", "B"),
               answer("p002", "ann", None, status="discarded"), answer("p003", "ann", "tie"),
               answer("nope", "ann", "A")]
    seen = ["p001", "p002", "p003", "nope"]
    first = store.save_review_answers("ds", answers, seen)
    assert (first.new_labels, first.changed_labels, first.unknown_pairs, first.discarded) == (3, 0, 1, 1)
    again = store.save_review_answers("ds", answers, seen)
    assert (again.new_labels, again.changed_labels, again.withdrawn_labels) == (0, 0, 0)
    assert gold(store) == [("p001", "ann", "B", "B is right", "argilla:ds"), ("p001", "bob", "B", None, "argilla:ds"),
                           ("p003", "ann", "tie", None, "argilla:ds")]
    status = dict(store.con.execute("SELECT pair_id, status FROM review_items WHERE dataset = 'ds'").fetchall())
    assert (status["p001"], status["p002"], status["p003"], status["p004"]) == ("answered", "discarded", "answered",
                                                                                 "pushed")
    # a reviewer who changes their mind replaces their label; one who discards withdraws it
    later = [answer("p001", "ann", "A"), answer("p001", "bob", None, status="discarded"), answer("p003", "ann", "tie")]
    changed = store.save_review_answers("ds", later, ["p001", "p003"])
    assert (changed.changed_labels, changed.withdrawn_labels) == (1, 1)
    assert [g[:3] for g in gold(store)] == [("p001", "ann", "A"), ("p003", "ann", "tie")]
    report = StatusReport.model_validate(store.status().model_dump())
    assert report.review.model_dump() == {"routed": 12, "pushed": 12, "answered": 2, "discarded": 1}
    assert report.by_state["human-labeled"] == 2  # p001 (A) and p003: a human 'tie' outranks the model label too
    out = tmp_path / "x.jsonl"
    store.copy_export(out, "jsonl", False, None)
    rows = {r["pair_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert rows["p001"]["label"] == "A" and rows["p001"]["label_source"] == "human"
    assert (rows["p003"]["label"], rows["p003"]["label_source"]) == ("tie", "human")  # not the model's label


def test_agreement_counts_majority_and_audit(store):
    routes = {r.candidate.pair_id: r for r in queue_all(store)}
    judge = {pid: r.candidate.label for pid, r in routes.items()}
    flip = {"A": "B", "B": "A"}
    audited = [pid for pid, r in routes.items() if r.reason == "audit"]
    doubtful = [pid for pid, r in routes.items() if r.reason != "audit" and judge[pid]]
    assert audited and len(doubtful) >= 2
    answers = [answer(audited[0], "ann", judge[audited[0]]),
               answer(doubtful[0], "ann", flip[judge[doubtful[0]]]),
               answer(doubtful[1], "ann", "A"), answer(doubtful[1], "bob", "B")]  # split: no majority
    store.save_review_answers("ds", answers, [audited[0], *doubtful[:2]])
    a = store.review_agreement("ds")
    assert (a.decided, a.agreed, a.audit_decided, a.audit_agreed) == (2, 1, 1, 1)


def test_migration_is_recorded_once(tmp_path):
    db = tmp_path / "m.duckdb"
    Store(db).close()
    Store(db).close()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM schema_migrations WHERE name = 'create_review_items'").fetchone()[0] == 1
