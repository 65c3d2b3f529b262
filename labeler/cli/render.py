"""Rich rendering of command results (tables, summaries): every table the CLI prints. No logic beyond formatting.
Every value that comes from data, files, servers or users goes through `text.safe` (no markup, no control
characters reach the terminal)."""

import json

from rich import box
from rich.console import Console
from rich.table import Table

from labeler.cli.text import safe
from labeler.ingestion import FileReport
from labeler.pipeline import AnnotateResult
from schemas import CalibrationRecord, EvalMetrics, JudgeVersion, QuarantineRow, RetrainResult, StatusReport

console = Console(emoji=False)  # `:train:` in a file name stays as written


def ingest_table(reports: list[FileReport]) -> Table:
    table = Table(title="Ingest")
    for col in ("file", "rows", "new", "already stored", "repeated", "quarantined", "gold labels"):
        table.add_column(col, justify="left" if col == "file" else "right", overflow="fold")
    for r in reports:
        c = r.counts
        name = safe(r.path) + (" (empty file)" if r.empty else "")
        table.add_row(name, str(c.rows), str(c.new_pairs), str(c.already_stored), str(c.repeated_in_file),
                      f"[red]{c.quarantined}[/red]" if c.quarantined else "0", str(c.gold_labels))
    return table


def layouts_found(reports: list[FileReport]) -> list[str]:
    """One line per input: the layout detected (and rows that made no pair)."""
    from labeler.formats.layouts import LAYOUTS

    lines = []
    for r in reports:
        if not r.empty or r.skipped:
            skipped = f"; {r.skipped} row(s) made no pair (ratings all equal)" if r.skipped else ""
            lines.append(f"{safe(r.path)}: layout {r.layout} ({LAYOUTS[r.layout]}){skipped}")
    return lines


def quarantine_table(rows: list[QuarantineRow]) -> Table:
    table = Table(title=f"Quarantined rows ({len(rows)})")
    for col in ("file", "line", "field", "reason", "raw"):
        table.add_column(col, overflow="fold", justify="right" if col == "line" else "left")
    for r in rows:
        table.add_row(safe(r.file), str(r.line), safe(r.field or "-"), safe(r.reason), safe((r.raw or "")[:80]))
    return table


def quarantine_hint(reports: list[FileReport]) -> str | None:
    bad = [(r.path, p) for r in reports for p in r.problems]
    if not bad:
        return None
    path, (line, field, reason) = bad[0]
    total = sum(r.counts.quarantined for r in reports)
    return (f"{total} bad row(s) quarantined, e.g. {safe(path)}:{line} field {safe(field or '-')}: {safe(reason)} "
            f"(all of them: `labeler quarantine`; --strict fails instead)")


def ingested(reports: list[FileReport]) -> None:
    """The ingest table, then a hint naming the first quarantined row (if any)."""
    console.print(ingest_table(reports))
    for line in layouts_found(reports):
        console.print(line, highlight=False, soft_wrap=True)
    model = sum(r.counts.model_labels for r in reports)
    if model:
        console.print(f"{model} row(s) carry a model label (label_source: model, a labeler export read back): not "
                      "taken as human labels; those pairs are stored unlabeled", highlight=False, soft_wrap=True)
    hint = quarantine_hint(reports)
    if hint:
        console.print(f"[yellow]{hint}[/yellow]")


def annotate_summary(result: AnnotateResult) -> Table | str:
    if not result.judged:
        if result.stored == 0:
            return "Nothing to judge: the store has no pairs (give files to annotate, or `labeler ingest` them first)."
        if result.pending == 0:
            return (f"Nothing to judge: every stored pair already has a label from judge {safe(result.judge_id)} "
                    f"(key {result.judge_key}).")
        return "No pairs judged."
    j = result.judged
    decided = [x for x in j if x.label]
    consistent = [x.order_consistent for x in j if x.order_consistent is not None]
    table = Table(title=f"Annotated {len(j)} pairs with {safe(result.judge_id)} ({j[0].mode}, K={j[0].samples})")
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
    table.add_row("run / judge key", safe(f"{result.run_id} / {result.judge_key}"))
    return table


def status(report: StatusReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"{safe(report.db)}: {report.pairs} pairs, {report.quarantined} quarantined rows")
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
        runs.add_row(safe(r.run_id), safe(r.command), safe(r.mode or "-"), str(r.samples or "-"), safe(r.status),
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
    table = Table(title=f"Agreement with humans (%): {safe(m.judge_id)} ({m.mode}, K={m.samples}), {m.n} pairs",
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
        table.add_row(safe(name), str(g.n), _pct(g.accuracy), f"{_pct(g.ci95[0])}-{_pct(g.ci95[1])}",
                      _pct(g.position_consistency), f"{_pct(rates['AB'])}/{_pct(rates['BA'])}",
                      f"{_ece(g.ece)}/{_ece(g.ece_calibrated)}", end_section=name == "all")
    baseline = Table(title="Beside the baseline \"the longer response wins\" (%)", box=box.SIMPLE_HEAD,
                     caption="longer: the baseline's agreement; shorter won: the judge's agreement where the human "
                     "chose the shorter response (n pairs); top 70%: agreement of the 70% most confident labels "
                     "minus all")
    for col in ("group", "judge", "longer", "shorter won", "n", "top 70%"):
        baseline.add_column(col, justify="left" if col == "group" else "right", no_wrap=col != "group")
    for name, g in groups[: 1 + len(m.by_source)]:
        gain = f"{g.gain_at_70 * 100:+.1f}" if g.gain_at_70 is not None else "-"
        baseline.add_row(safe(name), _pct(g.accuracy), _pct(g.longer_wins), _pct(g.human_shorter_accuracy),
                         str(g.human_shorter_n if g.human_shorter_n is not None else "-"), gain,
                         end_section=name == "all")
    votes = Table(title="Agreement by votes (maj@k from the stored samples)", box=box.SIMPLE_HEAD)
    for col in ("k per order", "votes", "agree %", "95% CI", "undecided"):
        votes.add_column(col, justify="right")
    for p in m.maj_at_k:
        votes.add_row(str(p.k), str(p.votes), _pct(p.accuracy), f"{_pct(p.ci95[0])}-{_pct(p.ci95[1])}", str(p.undecided))
    c, cal = m.coverage, m.calibration
    confusion = "; ".join(f"human {safe(h)}: judge A {r['A']}, B {r['B']}, undecided {r['undecided']}"
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
    return [table, baseline, votes, notes]


def calibration_summary(record: CalibrationRecord) -> str:
    ece = (f"ECE {record.ece_before:.3f} -> {record.ece_after:.3f} (in-sample)"
           if record.ece_before is not None and record.ece_after is not None else "ECE -")
    return (f"Stored temperature T = {record.temperature:.3f} for {safe(record.judge_id)} ({record.mode}, "
            f"K={record.samples}), fitted on {safe(record.fitted_on)}; {ece}. status, export and review routing now report calibrated confidence.")


def evaluated(result, out) -> None:
    """`labeler eval`: what was ingested and judged, the metric tables, the files written."""
    console.print(ingest_table(result.ingested))
    reused = result.metrics.n - len(result.judged.judged)
    console.print(f"Judged {len(result.judged.judged)} pairs, reused {max(reused, 0)} stored judgments.")
    for part in eval_tables(result.metrics):
        console.print(part)
    if result.written:
        console.print(f"Wrote {', '.join(safe(p.name) for p in result.written.values())} to {safe(out)}")


def retrain_table(result: RetrainResult) -> Table:
    verdict = "promoted (active)" if result.promoted and not result.forced else \
        "promoted with --force (worse on held-out)" if result.forced else "not promoted: worse on held-out"
    table = Table(title=f"{safe(result.version)}: {verdict}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("held-out agreement (new / previous)",
                  f"{result.heldout_agreement:.3f} / {result.parent_agreement:.3f} (n={result.heldout_n})")
    if result.reference_agreement is not None:
        table.add_row("reference pairs, general (new / before)",
                      f"{result.reference_agreement:.3f} / {result.reference_agreement_before:.3f}")
    table.add_row("trained from", safe(result.parent or result.start_judge_id))
    table.add_row("gold pairs / training rows", f"{result.train_pairs} / {result.train_rows}")
    table.add_row("resumed", "yes" if result.resumed else "no")
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("path", safe(result.path))
    return table


def _agree(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def versions_table(versions: list[JudgeVersion]) -> Table:
    general = [_reference(v) for v in versions]
    table = Table(title="Judge versions (held-out agreement: this version / the judge it had to beat)",
                  caption="general: agreement on the starter's held-out reference pairs, this version / the judge "
                  "it continued" if any(general) else None)
    for col in ("version", "status", "held-out", *(["general"] if any(general) else []), "trained from", "mode"):
        table.add_column(col, overflow="fold")
    for v, ref in zip(versions, general):
        status = ("[bold green]active[/bold green]" if v.active else "built-in" if v.version == "starter"
                  else "promoted" if v.promoted else "rejected")
        table.add_row(safe(v.version), status, f"{_agree(v.heldout_agreement)} / {_agree(v.parent_agreement)} "
                      f"(n={v.heldout_n})", *([ref or "-"] if any(general) else []),
                      safe(v.parent or v.start_judge_id), safe(f"{v.mode} ({v.weights})"))
    return table


def _reference(v: JudgeVersion) -> str | None:
    """A continued probe judge's agreement on the reference pairs, new / before (metrics of its last iteration)."""
    train = ((v.metrics or {}).get("iterations") or [{}])[-1].get("train", {})
    if train.get("reference_agreement") is None:
        return None
    return f"{train['reference_agreement']:.3f} / {train['reference_agreement_before']:.3f}"


def audit_tables(report, show: int) -> list[Table | str]:
    """`labeler audit`: flagged shares per source, then the most confident suspects."""
    table = Table(title=f"Audit of human labels: heads of {safe(report.judge_id)}, {report.folds} folds by prompt",
                  box=box.SIMPLE_HEAD, caption=f"flagged: the heads give the other response >= "
                  f"{report.confidence:.0%} (calibrated, T = {report.temperature:.2f}); negative: mean reward "
                  "difference against the human's choice")
    for col in ("source", "pairs", "flagged", "%", "negative %"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, g in [("all", report.overall), *report.by_source.items()]:
        table.add_row(safe(name), str(g.n), str(g.flagged), _pct(g.flagged_share), _pct(g.negative_share),
                      end_section=name == "all")
    suspects = sorted((r for r in report.rows if r.flagged), key=lambda r: r.p_human)[:show]
    listed = Table(title=f"Suspects ({len(suspects)} of {report.overall.flagged} shown)", box=box.SIMPLE_HEAD)
    for col in ("pair", "source", "human", "P(other)", "strength", "spread"):
        listed.add_column(col, justify="left" if col in ("pair", "source") else "right", overflow="fold")
    for r in suspects:
        listed.add_row(safe(r.pair_id), safe(r.source or "-"), r.human, f"{1 - r.p_human:.2f}",
                       f"{r.strength:+.3f}", f"{r.spread:.3f}")
    hint = "review push --suspects sends them to Argilla for a second look" if report.overall.flagged else \
        "no human label is confidently contradicted"
    return [table, listed, hint] if suspects else [table, hint]
