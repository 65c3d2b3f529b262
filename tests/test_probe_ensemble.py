"""Probe-head ensembles (preference strength and its spread), the correction that continues a probe judge on
reviewed pairs, and the review budget that routes the most doubtful labels first."""

import functools
import json
from pathlib import Path

import pytest
import torch

from helpers import run as run_cli
from labeler.judge.backends.probe import CONFIG, ProbeHead
from labeler.review.routing import RoutingRules, route
from schemas import RoutingCandidate
from test_probe import annotate_new_pairs, gold_with_sources, planted
from trainer.config import ProbeTrainConfig
from trainer.probe import fit_ensemble, fit_head
from trainer.probe_adapt import fit_correction

run = functools.partial(run_cli, ok=True)
pytestmark = pytest.mark.usefixtures("no_starter")


def agreement(head: ProbeHead, better, worse) -> float:
    mean, _ = head.strength(better, worse)
    return float((mean > 0).float().mean())


def test_the_spread_grows_where_the_heads_disagree_and_lowers_the_evidence():
    torch.manual_seed(0)
    better, worse, safety = planted(80, 0)  # few rows: the weights of the noise dimensions are poorly determined
    head = fit_ensemble(better, worse, safety, ProbeTrainConfig(members=10, spread_weight=3.0))
    assert head.members == 10 and head.t["w_help"].shape == (10, 16)
    base = torch.randn(200, 16)
    along_signal, along_noise = base.clone(), base.clone()
    along_signal[:, 0] += 1.0  # the dimension every resample agrees on
    along_noise[:, 5:] += torch.randn(200, 11)  # dimensions each resample weighs differently
    mean_s, spread_s = head.strength(along_signal, base)
    mean_n, spread_n = head.strength(along_noise, base)
    ratio = lambda m, s: float((s / m.abs().clamp_min(1e-6)).median())  # noqa: E731
    assert ratio(mean_n, spread_n) > 3 * ratio(mean_s, spread_s)
    evidence = head.evidence(mean_n, spread_n)
    assert torch.all(evidence.abs() <= mean_n.abs() + 1e-6) and float((evidence.abs() < mean_n.abs()).float().mean()) > 0.9
    # antisymmetric: the order of the two responses changes the sign, not the size
    flipped_mean, flipped_spread = head.strength(base, along_noise)
    assert torch.allclose(flipped_mean, -mean_n, atol=1e-5) and torch.allclose(flipped_spread, spread_n, atol=1e-5)


def test_an_ensemble_saves_and_loads_and_a_single_head_reads_as_before(tmp_path):
    better, worse, safety = planted(300, 1)
    cfg = ProbeTrainConfig(safety_sources="harm", members=3)
    one = fit_head(better, worse, safety, cfg)
    assert one.members == 1 and one.spread_weight == 0.0
    mean, spread = one.strength(better, worse)
    assert torch.allclose(mean, one.rewards(better) - one.rewards(worse)) and float(spread.abs().max()) == 0
    ensemble = fit_ensemble(better, worse, safety, cfg)
    ensemble.save(tmp_path)
    again = ProbeHead.load(tmp_path)
    assert again.members == 3 and again.gated and again.spread_weight == pytest.approx(cfg.spread_weight)
    assert torch.allclose(again.rewards(better), ensemble.rewards(better))
    assert agreement(again, better, worse) > 0.9


def shifted_domain(n: int, seed: int):
    """A reviewer's domain the prior never saw: the better response is further along +e3 (e0 says nothing)."""
    g = torch.Generator().manual_seed(seed)
    worse = torch.randn(n, 16, generator=g)
    better = worse + 0.3 * torch.randn(n, 16, generator=g)
    better[:, 3] = worse[:, 3] + 1.5
    better[:, 0] = worse[:, 0]
    better[:, 2] += 4.0  # what the domain's responses look like
    worse[:, 2] += 4.0
    return better, worse


def test_the_correction_learns_the_reviewed_domain_and_rehearsal_keeps_what_the_prior_knows():
    better, worse, safety = planted(600, 2)
    prior = fit_ensemble(better, worse, safety, ProbeTrainConfig(members=5, safety_sources="harm"))
    old_b, old_w, _ = planted(300, 3)
    new_b, new_w = shifted_domain(200, 4)
    test_b, test_w = shifted_domain(300, 5)
    prompts = [f"prompt {i}" for i in range(len(new_b))]
    cfg = ProbeTrainConfig(members=5)
    rehearsed, chosen = fit_correction(prior, new_b, new_w, prompts, cfg, reference=(better[:300], worse[:300]))
    assert agreement(prior, test_b, test_w) < 0.5  # the prior does not know the new domain
    assert agreement(rehearsed, test_b, test_w) > 0.85
    assert agreement(rehearsed, old_b, old_w) > agreement(prior, old_b, old_w) - 0.1
    assert chosen["reviewed_share"] in (0.25, 0.5, 0.75, 0.9) and chosen["reference_pairs"] == 300
    # without reference pairs, cross-validation on the reviewed domain alone lets the correction forget
    forgetful, _ = fit_correction(prior, new_b, new_w, prompts, cfg)
    assert agreement(forgetful, old_b, old_w) < agreement(rehearsed, old_b, old_w) - 0.1
    # and from scratch the reviewed pairs teach the new direction only
    scratch = fit_head(new_b, new_w, torch.zeros(len(new_b), dtype=torch.bool), ProbeTrainConfig())
    assert agreement(scratch, old_b, old_w) < agreement(rehearsed, old_b, old_w) - 0.2


def test_reviews_without_signal_leave_the_prior_where_it_was():
    better, worse, safety = planted(600, 6)
    prior = fit_ensemble(better, worse, safety, ProbeTrainConfig(members=5))
    g = torch.Generator().manual_seed(7)
    noise_b, noise_w = torch.randn(40, 16, generator=g), torch.randn(40, 16, generator=g)
    corrected, chosen = fit_correction(prior, noise_b, noise_w, [f"p{i}" for i in range(40)], ProbeTrainConfig(members=5))
    old_b, old_w, _ = planted(300, 8)
    assert chosen["prior_l2"] >= 1.0  # cross-validation finds nothing to learn and picks a strong pull
    assert abs(agreement(corrected, old_b, old_w) - agreement(prior, old_b, old_w)) <= 0.03
    # with reference pairs, no correction predicts the held-out reviews better than the judge as it is: kept
    kept, chosen = fit_correction(prior, noise_b, noise_w, [f"p{i}" for i in range(40)], ProbeTrainConfig(members=5),
                                  reference=(better[:200], worse[:200]))
    assert kept is prior and chosen["kept_prior"] and chosen["cv_loglik"]["keep"] > max(
        v for k, v in chosen["cv_loglik"].items() if k != "keep")


def candidate(pair_id: str, confidence: float, label="A", consistent=True) -> RoutingCandidate:
    return RoutingCandidate(pair_id=pair_id, judge_key="k", judge_id="j", label=label, confidence=confidence,
                            votes_a=1 if label == "A" else 0, votes_b=1 if label == "B" else 0,
                            order_consistent=consistent)


def test_a_review_budget_routes_the_most_doubtful_labels_first_whatever_the_threshold():
    pairs = [candidate(f"p{i}", c) for i, c in enumerate([0.9, 0.55, 0.99, 0.6, 0.52, 0.8])]
    pairs.append(candidate("undecided", 0.0, label=None))
    routes = route(pairs, RoutingRules(threshold=0.0, audit_rate=0.0, most=3))
    assert [r.candidate.pair_id for r in routes] == ["undecided", "p4", "p1"]
    assert [r.reason for r in routes] == ["undecided", "low_confidence", "low_confidence"]
    share = route(pairs, RoutingRules(audit_rate=0.0, most_share=0.5))
    assert [r.candidate.pair_id for r in share] == ["undecided", "p4", "p1", "p3"]
    audited = route(pairs, RoutingRules(audit_rate=1.0, most=2))
    assert [r.reason for r in audited].count("audit") == len(pairs) - 2
    with pytest.raises(ValueError, match="not both"):
        RoutingRules(most=2, most_share=0.1)


def test_retrain_without_a_method_continues_the_active_probe_judge(tmp_path, tiny_llama):
    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 24)
    first = json.loads(run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt-probe",
                           "--probe-layers", "1", "--force", "--json", "--quiet").stdout)
    more = gold_with_sources(tmp_path / "more.jsonl", 40)
    second = json.loads(run("retrain", "--db", db, "--gold", more, "--force", "--json", "--quiet").stdout)
    assert (second["method"], second["version"]) == ("bt-probe", "v002-bt-probe")
    versions = {v["version"]: v for v in json.loads(run("judges", "list", "--db", db, "--json").stdout)}
    config = json.loads((Path(versions["v002-bt-probe"]["path"]) / CONFIG).read_text())
    assert config["continues"] == versions[first["version"]]["path"] and config["layers"] == 1
    assert set(ProbeHead.load(Path(versions["v002-bt-probe"]["path"])).t) >= {"w_help", "adapt0.w"}


def test_a_reward_judges_label_carries_its_strength_and_a_rationale_that_agrees(tmp_path, tiny_llama):
    import duckdb

    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 24)
    run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers", "1",
        "--force", "--quiet")
    annotate_new_pairs(db, tmp_path)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT label, p_a, margin, margin_sd, rationale FROM judgments WHERE pair_id LIKE 'n%'"
                       ).fetchall()
    con.close()
    assert len(rows) == 4
    for label, p_a, margin, spread, rationale in rows:
        assert margin is not None and spread > 0  # ten heads by default
        assert (label == "A") == (margin > 0) == (p_a > 0.5)
        assert f"response {label} is better" in rationale and "verdict-token" not in rationale
        assert f"{margin:+.3f}" in rationale and "10 heads" in rationale


def test_audit_flags_a_flipped_human_label_and_retrain_can_drop_or_flip_it(tmp_path, tiny_llama, monkeypatch):
    import duckdb

    from labeler.judge.backends import models

    monkeypatch.setattr(models, "default_model_dir", lambda *a, **k: Path(tiny_llama))
    db = tmp_path / "l.duckdb"
    rows = [json.loads(line) for line in gold_with_sources(tmp_path / "gold.jsonl", 60).read_text().splitlines()]
    for r in rows[:3]:  # three labels flipped: the pair's other response is the clear winner
        r["label"] = "B" if r["label"] == "A" else "A"
    gold = tmp_path / "flipped.jsonl"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run("audit", gold, "--db", db, "--from-scratch", "--probe-layers", "1", "--folds", "3", "--confidence", "0.6", "--json", "-q")
    report = json.loads(out.stdout)
    flagged = {r["pair_id"] for r in report["rows"] if r["flagged"]}
    assert {"g000", "g001", "g002"} <= flagged and len(flagged) <= 10
    assert report["overall"]["n"] == 60 and report["judge_id"] == "scratch"
    shown = run("audit", "--db", db, "--from-scratch", "--probe-layers", "1", "--folds", "3", "--confidence", "0.6",
                "--show", "2")
    assert "Suspects (2 of" in shown.stdout and "review push --suspects" in shown.stdout
    con = duckdb.connect(str(db), read_only=True)
    assert {p for (p,) in con.execute("SELECT pair_id FROM audits WHERE flagged").fetchall()} == flagged
    con.close()
    dropped = json.loads(run("retrain", "--db", db, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers",
                             "1", "--suspects", "drop", "--force", "--json", "--quiet").stdout)
    flipped = json.loads(run("retrain", "--db", db, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers",
                             "1", "--suspects", "flip", "--force", "--json", "--quiet").stdout)
    kept = json.loads(run("retrain", "--db", db, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers",
                          "1", "--force", "--json", "--quiet").stdout)
    smoothed = json.loads(run("retrain", "--db", db, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers",
                              "1", "--suspects", "smooth", "--force", "--json", "--quiet").stdout)
    n_flagged_train = kept["train_pairs"] - dropped["train_pairs"]
    assert n_flagged_train >= 1 and flipped["train_pairs"] == kept["train_pairs"] == smoothed["train_pairs"]
    rows = [json.loads(line) for line in (Path(smoothed["path"]) / "train_data.jsonl").read_text().splitlines()]
    soft = {r["pair_id"]: r["target"] for r in rows if r["target"] < 1}
    assert len(soft) == n_flagged_train and set(soft) <= flagged and all(t < 0.4 for t in soft.values())
    bad = run_cli("retrain", "--db", db, "--method", "bt-probe", "--suspects", "burn")
    assert bad.exit_code == 2 and "suspects must be keep, drop, flip or smooth" in bad.output
    star = run_cli("retrain", "--db", db, "--method", "star-dpo", "--suspects", "smooth")
    assert star.exit_code == 1 and "--suspects smooth needs --method bt-probe" in star.output


def test_eval_of_a_reward_ensemble_shows_the_baseline_and_both_coverage_curves(tmp_path, tiny_llama):
    db = tmp_path / "l.duckdb"
    gold = gold_with_sources(tmp_path / "gold.jsonl", 24)
    run("retrain", "--db", db, "--gold", gold, "--model", tiny_llama, "--method", "bt-probe", "--probe-layers", "1",
        "--force", "--quiet")
    out = run("eval", gold, "--db", db, "--out", tmp_path / "report")
    assert "the longer response wins" in out.stdout and "top 70%" in out.stdout
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert len(metrics["coverage_curve_margin"]) >= 2 and metrics["coverage_curve_margin"][-1]["coverage"] == 1.0
    rows = [json.loads(line) for line in gold.read_text().splitlines()]
    longer = sum((len(r["response_a"]) > len(r["response_b"])) == (r["label"] == "A") for r in rows) / len(rows)
    assert metrics["longer_wins"] == pytest.approx(longer)
    shorter = [r for r in rows if (len(r["response_a"]) > len(r["response_b"])) != (r["label"] == "A")]
    assert metrics["human_shorter_n"] == len(shorter) and metrics["gain_at_70"] is not None
