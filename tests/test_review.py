"""`labeler review` against a real Argilla server started through `labeler review serve` (session fixture).

Reviewers answer through the Argilla SDK with their own API keys; pull must bring every answer back once.
"""

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from argilla_session import free_port, session_server
from helpers import query, run, write_pairs
from labeler.cli.review import review_app
from labeler.review.server import Paths
from schemas import ExportRow, StatusReport

GUIDE = (Path(__file__).parents[1] / "docs" / "review.md").read_text()  # the how-to page of the docs site
REVIEW_COMMANDS = sorted(c.name or c.callback.__name__ for c in review_app.registered_commands)


def annotated_db(tmp_path, n=16, start=0, mode="cot", db=None):
    db = db or tmp_path / "l.duckdb"
    result = run("annotate", write_pairs(tmp_path / f"d{start}.jsonl", n, start=start), "--db", db,
                 "--backend", "fake", "--mode", mode, *(["-k", "3"] if mode == "cot" else []),
                 "--batch-size", "64", "-q")
    assert result.exit_code == 0, result.output
    return db


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    return session_server(request, tmp_path_factory)


# ---- without a server --------------------------------------------------------------------------------------------

def test_review_commands_have_examples_and_docs():
    assert REVIEW_COMMANDS == ["env", "pull", "push", "serve", "stop"]
    assert "## `labeler review`" in GUIDE
    for name in REVIEW_COMMANDS:
        result = run("review", name, "--help")
        assert result.exit_code == 0
        assert f"Example: labeler review {name}" in result.output.replace("\n", " ")
        assert f"labeler review {name}" in GUIDE


def test_api_key_from_env_is_never_shown_in_help():
    result = run("review", "push", "--help", env={"ARGILLA_API_KEY": "very-secret-key-123"})
    assert result.exit_code == 0 and "very-secret-key-123" not in result.output


def test_unreachable_url_is_one_error_line(tmp_path):
    db = annotated_db(tmp_path, n=2)
    url = f"http://127.0.0.1:{free_port()}"
    for cmd in ("push", "pull"):
        result = run("review", cmd, "--db", db, "--url", url, "--api-key", "whatever-key")
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: cannot reach Argilla at {url} (")


def test_missing_credentials_are_user_errors(tmp_path):
    db = annotated_db(tmp_path, n=2)
    env = {"LABELER_CACHE_DIR": str(tmp_path / "cache"), "ARGILLA_API_URL": None, "ARGILLA_API_KEY": None}
    no_server = run("review", "push", "--db", db, env=env)
    assert no_server.exit_code == 1
    assert no_server.stderr.strip() == (f"Error: no local Argilla server set up in {tmp_path / 'cache' / 'argilla'} "
                                        "(start one with `labeler review serve`)")
    assert run("review", "env", env=env).stderr.startswith("Error: no local Argilla server set up")
    half = run("review", "pull", "--db", db, "--url", "http://127.0.0.1:1", env=env)
    assert half.exit_code == 1 and "needs an API key" in half.stderr
    assert run("review", "push", "--db", db, "--threshold", "2").exit_code == 2


# ---- against the session's server -------------------------------------------------------------------------------

def test_serve_again_reuses_server_and_keeps_secrets(server):
    paths = Paths(server.data_dir)
    pids = {p.name: p.read_text() for p in paths.run.glob("*.pid")}
    again = run("review", "serve", "--port", server.port, "--data-dir", server.data_dir)
    assert again.exit_code == 0 and "already running, reused" in again.stdout
    assert {p.name: p.read_text() for p in paths.run.glob("*.pid")} == pids
    creds = server.creds
    assert stat.S_IMODE(paths.credentials.stat().st_mode) == 0o600
    assert creds.api_key not in server.serve_output + again.output and creds.password not in again.output
    env = run("review", "env", "--data-dir", server.data_dir)
    assert env.stdout.splitlines() == [f"export ARGILLA_API_URL={creds.url}", f"export ARGILLA_API_KEY={creds.api_key}"]
    state = json.loads(paths.state.read_text())
    assert _listening_addresses({state["port"], state["elasticsearch_port"], state["redis_port"]}) == {"127.0.0.1"}


def test_push_answer_pull_round_trip(server, tmp_path):
    db = annotated_db(tmp_path)
    ds = ["--dataset", "roundtrip", *server.cli_args()]
    pushed = run("review", "push", "--db", db, "--audit-rate", "0.5", *ds)
    assert pushed.exit_code == 0, pushed.output
    items = dict(query(db, "SELECT pair_id, route_reason FROM review_items WHERE dataset = 'roundtrip'"))
    assert len(items) >= 6 and "audit" in items.values() and f"pushed {len(items)} records" in pushed.stdout
    records = {r["external_id"]: r for r in server.records("roundtrip")}
    assert records.keys() == items.keys()
    judged = {p: (label, conf, key) for p, label, conf, key in query(
        db, "SELECT pair_id, label, confidence, judge_key FROM judgments")}
    for pair_id, record in records.items():
        label, conf, key = judged[pair_id]
        assert record["metadata"]["route_reason"] == items[pair_id]
        assert record["metadata"]["confidence"] == pytest.approx(conf)
        (suggestion,) = record["suggestions"]
        assert suggestion["value"] == label and suggestion["score"] == pytest.approx(conf)
        assert key in suggestion["agent"] and record["fields"]["prompt"].startswith("What is")

    again = run("review", "push", "--db", db, *ds)
    assert again.exit_code == 0 and "pushed 0 records" in again.stdout
    annotated_db(tmp_path, n=8, start=100, db=db)
    more = run("review", "push", "--db", db, "--audit-rate", "0.5", *ds)
    assert more.exit_code == 0
    routed = [p for (p,) in query(db, "SELECT pair_id FROM review_items WHERE dataset = 'roundtrip'")]
    ids = [r["external_id"] for r in server.records("roundtrip")]
    assert len(ids) == len(set(ids)) == len(routed) > len(items)

    first, second, third, fourth = sorted(items)[:4]
    ann, bob = server.add_reviewer("ann"), server.add_reviewer("bob")
    server.answer(ann, "roundtrip", first, "B", note="B adds correctly.")
    server.answer(bob, "roundtrip", first, "B")
    server.answer(ann, "roundtrip", second, None, status="discarded")
    server.answer(ann, "roundtrip", third, "tie")
    server.answer(bob, "roundtrip", fourth, "A", status="draft")
    pulled = run("review", "pull", "--db", db, *ds)
    assert pulled.exit_code == 0, pulled.output
    assert "3 submitted answers, 1 discarded" in pulled.stdout and "human labels: 3 new" in pulled.stdout
    assert "judge agreed with the reviewers on" in pulled.stdout
    gold = query(db, "SELECT pair_id, annotator, label, note, origin FROM gold_labels ORDER BY ALL")
    origin = "argilla:roundtrip"
    assert gold == sorted([(first, "ann", "B", "B adds correctly.", origin), (first, "bob", "B", None, origin),
                           (third, "ann", "tie", None, origin)])
    twice = run("review", "pull", "--db", db, *ds)
    assert "human labels: 0 new, 0 changed, 0 withdrawn" in twice.stdout
    assert query(db, "SELECT count(*) FROM gold_labels") == [(3,)]

    status = StatusReport.model_validate_json(run("status", "--db", db, "--json").stdout)
    assert status.review.model_dump() == {"routed": len(routed), "pushed": len(routed), "answered": 2, "discarded": 1}
    assert "Review queue" in run("status", "--db", db).stdout
    out = tmp_path / "labels.jsonl"
    assert run("export", "--db", db, "--out", out).exit_code == 0
    rows = {r.pair_id: r for r in map(ExportRow.model_validate_json, out.read_text().splitlines())}
    assert (rows[first].label, rows[first].label_source) == ("B", "human")
    assert rows[second].label_source == "model"  # discarded: no human label


def test_wrong_api_key_is_one_error_line(server, tmp_path):
    db = annotated_db(tmp_path, n=2)
    for cmd in ("push", "pull"):
        result = run("review", cmd, "--db", db, "--url", server.url, "--api-key", "not-the-key-123")
        assert result.exit_code == 1
        assert result.stderr == (f"Error: Argilla at {server.url} rejected the API key "
                                 "(check --api-key or ARGILLA_API_KEY)\n")


def test_reviewer_key_cannot_pull_and_says_which_key_is_needed(server, tmp_path):
    db = annotated_db(tmp_path, n=4)
    pushed = run("review", "push", "--db", db, "--dataset", "perm", "--threshold", "1.0", *server.cli_args())
    assert pushed.exit_code == 0
    reviewer = server.add_reviewer("dave")
    result = run("review", "pull", "--db", db, "--dataset", "perm", "--url", server.url, "--api-key", reviewer.api_key)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: pull failed, nothing stored: ") and "owner or admin key" in result.stderr


def test_pull_of_unknown_dataset_is_an_error(server, tmp_path):
    db = annotated_db(tmp_path, n=2)
    result = run("review", "pull", "--db", db, "--dataset", "never-pushed", *server.cli_args())
    assert result.exit_code == 1 and "dataset 'never-pushed' not found" in result.stderr


def test_server_killed_mid_push_then_rerun_sends_the_rest_without_duplicates(server, tmp_path):
    """Kept last in this file: it kills the session's server and starts it again."""
    db = annotated_db(tmp_path, n=150, mode="direct")
    args = [sys.executable, "-m", "labeler", "review", "push", "--db", str(db), "--dataset", "killed",
            "--threshold", "1.0", "--audit-rate", "1.0", "--batch-size", "2", "--quiet", *server.cli_args()]
    push = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, sent = time.monotonic() + 120, 0
    while sent < 4 and push.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        sent = len(server.records("killed"))
    assert push.poll() is None, "push finished before the server could be killed"
    os.kill(int(Paths(server.data_dir).pid_file("server").read_text()), signal.SIGKILL)
    _, err = push.communicate(timeout=120)
    assert push.returncode == 1
    assert err.count("\n") == 1 and err.startswith("Error: push stopped after "), err
    assert 0 < query(db, "SELECT count(pushed_at) FROM review_items")[0][0] < 150

    restarted = run("review", "serve", "--port", server.port, "--data-dir", server.data_dir)
    assert restarted.exit_code == 0 and "started in" in restarted.stdout
    rerun = run("review", "push", "--db", db, "--dataset", "killed", "--threshold", "1.0", "--audit-rate", "1.0",
                *server.cli_args())
    assert rerun.exit_code == 0, rerun.output
    ids = [r["external_id"] for r in server.records("killed")]
    assert len(ids) == len(set(ids)) == 150
    assert set(ids) == {p for (p,) in query(db, "SELECT pair_id FROM pairs")}
    assert query(db, "SELECT count(*) FROM review_items WHERE pushed_at IS NULL") == [(0,)]


def _listening_addresses(ports: set[int]) -> set[str]:
    """Local addresses of the TCP sockets listening on `ports` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.split(":")
            if state == "0A" and int(port, 16) in ports:
                found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)) if len(address) == 8
                          else f"ipv6:{address}")
    return found


def test_push_most_doubtful_sends_the_budget_lowest_confidence_first(server, tmp_path):
    db = annotated_db(tmp_path, n=12)
    ds = ["--dataset", "budget", *server.cli_args()]
    pushed = run("review", "push", "--db", db, "--most-doubtful", "4", "--audit-rate", "0", *ds)
    assert pushed.exit_code == 0, pushed.output
    routed = {p for (p,) in query(db, "SELECT pair_id FROM review_items WHERE dataset = 'budget'")}
    confidence = dict(query(db, "SELECT pair_id, confidence FROM judgments"))
    assert len(routed) == 4 and "pushed 4 records" in pushed.stdout
    assert max(confidence[p] for p in routed) <= min(c for p, c in confidence.items() if p not in routed)
    share = run("review", "push", "--db", db, "--most-doubtful", "50%", "--audit-rate", "0", "--dataset", "half",
                *server.cli_args())
    assert share.exit_code == 0 and "pushed 6 records" in share.stdout
    bad = run("review", "push", "--db", db, "--most-doubtful", "many", *ds)
    assert bad.exit_code == 2 and "--most-doubtful takes a number" in bad.output


def test_push_suspects_sends_flagged_human_labels_with_the_audits_strength(server, tmp_path):
    from labeler.store import Store
    from schemas import AuditRow

    db = tmp_path / "l.duckdb"
    assert run("ingest", write_pairs(tmp_path / "gold.jsonl", 6, labeled=True), "--db", db).exit_code == 0
    with Store(db) as store:  # what `labeler audit` stores (tests/test_probe_ensemble.py runs the audit itself)
        store.save_audit("starter@x", [
            AuditRow(pair_id="p000", source="arith", human="A", strength=-1.25, spread=0.2, p_human=0.1, flagged=True),
            AuditRow(pair_id="p001", source="arith", human="A", strength=0.5, spread=0.1, p_human=0.7, flagged=False)])
    ds = ["--dataset", "second-look", *server.cli_args()]
    pushed = run("review", "push", "--db", db, "--suspects", *ds)
    assert pushed.exit_code == 0, pushed.output
    assert "1 suspect" in pushed.stdout and "pushed 1 records" in pushed.stdout
    (record,) = server.records("second-look")
    assert record["external_id"] == "p000" and record["metadata"]["route_reason"] == "suspect"
    assert record["metadata"]["strength"] == pytest.approx(1.25) and record["metadata"]["spread"] == pytest.approx(0.2)
    assert record["suggestions"][0]["value"] == "B"
    assert "prefer response B" in record["fields"]["judge_rationale"] and "human label says A" in \
        record["fields"]["judge_rationale"]
