"""Rich rendering of command results (tables, summaries): every table the CLI prints. No logic beyond formatting."""

import json

from rich import box
from rich.console import Console
from rich.table import Table

from labeler.ingestion import FileReport
from labeler.pipeline import AnnotateResult
from schemas import CalibrationRecord, EvalMetrics, JudgeVersion, QuarantineRow, RetrainResult, StatusReport

console = Console()


def ingest_table(reports: list[FileReport]) -> Table:
    table = Table(title="Ingest")
    for col in ("file", "rows", "new", "already stored", "repeated", "quarantined", "gold labels"):
        table.add_column(col, justify="left" if col == "file" else "right", overflow="fold")
    for r in reports:
        c = r.counts
        name = r.path + (" (empty file)" if r.empty else "")
        table.add_row(name, str(c.rows), str(c.new_pairs), str(c.already_stored), str(c.repeated_in_file),
                      f"[red]{c.quarantined}[/red]" if c.quarantined else "0", str(c.gold_labels))
    return table


def layouts_found(reports: list[FileReport]) -> list[str]:
    """One line per input: the layout detected (and rows that made no pair)."""
    from labeler.formats.layouts import LAYOUTS

    lines = []
    for r in reports:
        if not r.empty or r.skipped:
            skipped = f"; {r.skipped} row(s) made no gold pair (no two different ratings)" if r.skipped else ""
            groups = f"; {r.groups} new group(s) to rank (labeler rank)" if r.groups else ""
            lines.append(f"{r.path}: layout {r.layout} ({LAYOUTS[r.layout]}){skipped}{groups}")
    return lines


def quarantine_table(rows: list[QuarantineRow]) -> Table:
    table = Table(title=f"Quarantined rows ({len(rows)})")
    for col in ("file", "line", "field", "reason", "raw"):
        table.add_column(col, overflow="fold", justify="right" if col == "line" else "left")
    for r in rows:
        table.add_row(r.file, str(r.line), r.field or "-", r.reason, (r.raw or "")[:80])
    return table


def quarantine_hint(reports: list[FileReport]) -> str | None:
    bad = [(r.path, p) for r in reports for p in r.problems]
    if not bad:
        return None
    path, (line, field, reason) = bad[0]
    total = sum(r.counts.quarantined for r in reports)
    return (f"{total} bad row(s) quarantined, e.g. {path}:{line} field {field or '-'}: {reason} "
            f"(all of them: `labeler quarantine`; --strict fails instead)")


def ingested(reports: list[FileReport]) -> None:
    """The ingest table, then a hint naming the first quarantined row (if any)."""
    console.print(ingest_table(reports))
    for line in layouts_found(reports):
        console.print(line, highlight=False, soft_wrap=True)
    hint = quarantine_hint(reports)
    if hint:
        console.print(f"[yellow]{hint}[/yellow]")


def annotate_summary(result: AnnotateResult) -> Table | str:
    if not result.judged:
        if result.stored == 0:
            return "Nothing to judge: the store has no pairs (give files to annotate, or `labeler ingest` them first)."
        if result.pending == 0:
            return (f"Nothing to judge: every stored pair already has a label from judge {result.judge_id} "
                    f"(key {result.judge_key}).")
        return "No pairs judged."
    j = result.judged
    decided = [x for x in j if x.label]
    consistent = [x.order_consistent for x in j if x.order_consistent is not None]
    table = Table(title=f"Annotated {len(j)} pairs with {result.judge_id} ({j[0].mode}, K={j[0].samples})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("labels A / B / undecided", f"{sum(x.label == 'A' for x in j)} / "
                  f"{sum(x.label == 'B' for x in j)} / {len(j) - len(decided)}")
    table.add_row("mean confidence", f"{sum(x.confidence for x in j) / len(j):.3f}")
    if result.temperature:
        from labeler.evaluation.calibration import calibrated

        mean = sum(calibrated(x, result.temperature) for x in j) / len(j)
        table.add_row(f"  calibrated (T={result.temperature:.2f})", f"{mean:.3f}")
    table.add_row("order-consistent", f"{sum(consistent)}/{len(consistent)}" if consistent else "-")
    table.add_row("samples abstained", str(sum(x.abstained for x in j)))
    table.add_row("throughput", f"{result.pairs_per_second:.2f} pairs/s ({result.seconds:.1f} s)")
    table.add_row("run / judge key", f"{result.run_id} / {result.judge_key}")
    return table


def status(report: StatusReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"{report.db}: {report.pairs} pairs, {report.quarantined} quarantined rows")
    table.add_column("state")
    table.add_column("pairs", justify="right")
    for state, n in report.by_state.items():
        table.add_row(state, str(n))
    for label, n in report.label_balance.items():
        table.add_row(f"model label {label}", str(n))
    for label, n in report.human_labels.items():
        table.add_row(f"human label {label}", str(n))
    console.print(table)
    peak = max((b["count"] for b in report.confidence_histogram), default=0) or 1
    hist = Table(title="Confidence of the latest model labels")
    hist.add_column("confidence")
    hist.add_column("pairs", justify="right")
    hist.add_column("")
    for b in report.confidence_histogram:
        hist.add_row(f"{b['low']:.1f}-{b['high']:.1f}", str(b["count"]), "█" * round(30 * b["count"] / peak))
    console.print(hist)
    runs = Table(title="Recent runs")
    for col in ("run", "command", "mode", "K", "status", "done", "started"):
        runs.add_column(col)
    for r in report.runs:
        runs.add_row(r.run_id, r.command, r.mode or "-", str(r.samples or "-"), r.status,
                     f"{r.n_done}/{r.n_target}", r.started_at.strftime("%Y-%m-%d %H:%M:%S"))
    console.print(runs)
    q = report.review
    if q.routed:
        review = Table(title="Review queue (labeler review)")
        for col in ("routed", "pushed", "answered", "discarded"):
            review.add_column(col, justify="right")
        review.add_row(str(q.routed), str(q.pushed), str(q.answered), str(q.discarded))
        console.print(review)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _ece(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


MAX_SUBCATEGORY_ROWS = 12


def eval_tables(m: EvalMetrics) -> list[Table | str]:
    """`labeler eval`: agreement, position bias and calibration per group, then votes and coverage."""
    table = Table(title=f"Agreement with humans (%): {m.judge_id} ({m.mode}, K={m.samples}), {m.n} pairs",
                  box=box.SIMPLE_HEAD, caption="agree: judge label = human label (undecided = wrong); 95% CI: Wilson; "
                  "cons.: orders agree; 1st: share of each order's verdicts for the response shown first; "
                  "ECE: raw / calibrated (cross-validated)")
    for col in ("group", "n", "agree", "95% CI", "cons.", "1st AB/BA", "ECE raw/cal"):
        table.add_column(col, justify="left" if col == "group" else "right", overflow="fold", no_wrap=col != "group")
    subs = m.by_subcategory if len(m.by_subcategory) <= MAX_SUBCATEGORY_ROWS else {}
    groups = [("all", m)] + [(f"{kind}{name}", g) for kind, by in
                             (("", m.by_source), ("", m.by_category), ("  ", subs)) for name, g in by.items()]
    for name, g in groups:
        rates = g.a_rate_by_order
        table.add_row(name, str(g.n), _pct(g.accuracy), f"{_pct(g.ci95[0])}-{_pct(g.ci95[1])}",
                      _pct(g.position_consistency), f"{_pct(rates['AB'])}/{_pct(rates['BA'])}",
                      f"{_ece(g.ece)}/{_ece(g.ece_calibrated)}", end_section=name == "all")
    votes = Table(title="Agreement by votes (maj@k from the stored samples)", box=box.SIMPLE_HEAD)
    for col in ("k per order", "votes", "agree %", "95% CI", "undecided"):
        votes.add_column(col, justify="right")
    for p in m.maj_at_k:
        votes.add_row(str(p.k), str(p.votes), _pct(p.accuracy), f"{_pct(p.ci95[0])}-{_pct(p.ci95[1])}", str(p.undecided))
    c, cal = m.coverage, m.calibration
    confusion = "; ".join(f"human {h}: judge A {r['A']}, B {r['B']}, undecided {r['undecided']}"
                          for h, r in m.confusion.items())
    stored = (f"stored calibration T = {cal.stored_temperature:.3f} (ECE with it: {_ece(cal.ece_stored)})"
              if cal.stored_temperature
              else "no stored calibration (`labeler calibrate` fits one)")
    notes = (f"Coverage {c.target:.0%}: keep {c.confidence} confidence >= {c.threshold:.3f} -> {c.n} pairs "
             f"({c.coverage:.1%}) at {c.accuracy:.1%} agreement.\n"
             f"Temperature on all pairs T = {cal.temperature:.3f}; ECE calibrated: {cal.folds}-fold cross-validation "
             f"by prompt; {stored}.\nConfusion: {confusion}.")
    if len(m.by_subcategory) > MAX_SUBCATEGORY_ROWS:
        notes += f"\n{len(m.by_subcategory)} subcategories: see metrics.json (by_subcategory) or report.md."
    return [table, votes, notes]


def calibration_summary(record: CalibrationRecord) -> str:
    ece = (f"ECE {record.ece_before:.3f} -> {record.ece_after:.3f} (in-sample)"
           if record.ece_before is not None and record.ece_after is not None else "ECE -")
    return (f"Stored temperature T = {record.temperature:.3f} for {record.judge_id} ({record.mode}, K={record.samples}), "
            f"fitted on {record.fitted_on}; {ece}. status, export and review routing now report calibrated confidence.")


def evaluated(result, out) -> None:
    """`labeler eval`: what was ingested and judged, the metric tables, the files written."""
    console.print(ingest_table(result.ingested))
    reused = result.metrics.n - len(result.judged.judged)
    console.print(f"Judged {len(result.judged.judged)} pairs, reused {max(reused, 0)} stored judgments.")
    for part in eval_tables(result.metrics):
        console.print(part)
    if result.written:
        console.print(f"Wrote {', '.join(p.name for p in result.written.values())} to {out}")


def retrain_table(result: RetrainResult) -> Table:
    verdict = "promoted (active)" if result.promoted and not result.forced else \
        "promoted with --force (worse on held-out)" if result.forced else "not promoted: worse on held-out"
    table = Table(title=f"{result.version}: {verdict}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("held-out agreement (new / previous)",
                  f"{result.heldout_agreement:.3f} / {result.parent_agreement:.3f} (n={result.heldout_n})")
    table.add_row("trained from", result.parent or result.start_judge_id)
    table.add_row("gold pairs / training rows", f"{result.train_pairs} / {result.train_rows}")
    table.add_row("resumed", "yes" if result.resumed else "no")
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("path", result.path)
    return table


def _agree(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def versions_table(versions: list[JudgeVersion]) -> Table:
    table = Table(title="Judge versions (held-out agreement: this version / the judge it had to beat)")
    for col in ("version", "status", "held-out", "trained from", "mode"):
        table.add_column(col, overflow="fold")
    for v in versions:
        status = ("[bold green]active[/bold green]" if v.active else "built-in" if v.version == "starter"
                  else "promoted" if v.promoted else "rejected")
        table.add_row(v.version, status, f"{_agree(v.heldout_agreement)} / {_agree(v.parent_agreement)} "
                      f"(n={v.heldout_n})", v.parent or v.start_judge_id, f"{v.mode} ({v.weights})")
    return table


def rank_summary(result) -> str:
    """One line on a `labeler rank` run (`labeler.ranking.run.RankResult`)."""
    if not result.ranked:
        return f"Nothing to rank: every group has a ranking from {result.judge_id}."
    calls = (f"{result.judge_calls} responses scored" if result.method == "reward"
             else f"{result.judge_calls} pairs judged in both orders")
    return (f"Ranked {len(result.ranked)} group(s) with {result.judge_id} ({result.method}): {calls} in "
            f"{result.seconds:.1f} s. Export: labeler export --rankings --out ranked.jsonl")


def rank_eval_table(m) -> Table:
    """`labeler eval --rank` (`schemas.rankings.RankEvalMetrics`)."""
    def ci(pair) -> str:
        return f"[{pair[0]:.3f}, {pair[1]:.3f}]" if pair else "-"

    table = Table(title=f"Rankings of {m.judge_id} ({m.method}) against the humans, {m.groups} prompts")
    for col in ("metric", "value", "95 % CI", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    table.add_row("pairwise agreement", f"{m.pairwise_agreement:.3f}", ci(m.pairwise_ci95), str(m.pairs))
    table.add_row("Kendall's tau (mean per prompt)", "-" if m.kendall_tau is None else f"{m.kendall_tau:.3f}",
                  ci(m.kendall_tau_ci95), str(m.tau_groups))
    chance = "" if m.top1_chance is None else f" (chance {m.top1_chance:.3f})"
    table.add_row("top-1" + chance, "-" if m.top1 is None else f"{m.top1:.3f}", ci(m.top1_ci95), str(m.top1_groups))
    return table
