"""`labeler eval --out DIR`: metrics.json, the PNG plots (`plots`) and a short report.md."""

from pathlib import Path

from labeler.errors import LabelerError
from labeler.evaluation import metrics as eval_metrics
from labeler.paths import atomic_write
from schemas import EvalMetrics


def write_outputs(metrics: EvalMetrics, out: Path) -> dict[str, Path]:
    from labeler.evaluation import plots as eval_plots

    if out.exists() and not out.is_dir():
        raise LabelerError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "metrics.json", metrics.model_dump_json(indent=2) + "\n")
    written = {"metrics": out / "metrics.json", **eval_plots.write_all(metrics, out)}
    atomic_write(out / "report.md", report_markdown(metrics))
    written["report"] = out / "report.md"
    return written


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _group_line(name: str, g) -> str:
    rates = g.a_rate_by_order
    return (f"| {name} | {g.n} | {_pct(g.accuracy)} [{_pct(g.ci95[0])}, {_pct(g.ci95[1])}] | "
            f"{_pct(g.position_consistency)} | {_pct(rates['AB'])} / {_pct(rates['BA'])} | "
            f"{_num(g.ece)} → {_num(g.ece_calibrated)} |")


def report_markdown(m: EvalMetrics) -> str:
    """A short report.md showing the metrics and the plots next to it."""
    lines = [
        f"# labeler eval: {m.judge_id} ({m.mode}, K={m.samples})", "",
        f"{m.n} human-labelled pairs from {', '.join(f'`{f}`' for f in m.files)}; judge key `{m.judge_key}`.", "",
        "Agreement: share of pairs whose judge label equals the human label (undecided counts as wrong), with a",
        "95 % Wilson interval. First-shown rate: per order, how often the judge picked the response it saw first",
        f"(about 50 % for an unbiased judge here). ECE: {m.bins} equal-width bins over [0.5, 1]; calibrated = "
        f"temperature scaling, {m.calibration.folds}-fold cross-validation with folds by prompt.", "",
        "| group | n | agreement [95 % CI] | position consistency | first-shown rate AB / BA | ECE raw → calibrated |",
        "|---|---:|---|---:|---|---|", _group_line("**all**", m),
    ]
    for title, groups in (("source", m.by_source), ("category", m.by_category), ("subcategory", m.by_subcategory)):
        lines += [_group_line(f"{title}: {name}", g) for name, g in groups.items()]
    c = m.coverage
    lines += ["", "![agreement by group](groups.png)", "", "## Calibration", "",
              f"Temperature fitted on all {m.n} pairs: T = {m.calibration.temperature:.3f} (per fold: "
              f"{', '.join(f'{t:.3f}' for t in m.calibration.fold_temperatures)}). "
              + (f"Stored calibration applied by status/export/routing: T = {m.calibration.stored_temperature:.3f} "
                 f"(ECE with it on these pairs: {_num(m.calibration.ece_stored)})."
                 if m.calibration.stored_temperature else "No calibration is stored for this judge (`labeler calibrate`)."),
              "", "![reliability diagram](reliability.png)", "", "## Coverage", "",
              f"To keep {c.target:.0%} of the labels, route pairs with {c.confidence} confidence below "
              f"**{c.threshold:.3f}** to review: the kept {c.coverage:.1%} ({c.n} pairs) agree {c.accuracy:.1%}.", "",
              "| coverage ≥ | threshold | kept | agreement |", "|---:|---:|---:|---:|"]
    for target in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        p = eval_metrics.threshold_for_coverage(m.coverage_curve, target)
        if p:
            lines.append(f"| {target:.0%} | {p.threshold:.3f} | {p.n} ({p.coverage:.1%}) | {p.accuracy:.1%} |")
    lines += ["", "![coverage curve](coverage.png)", "", "## Votes (maj@k from the stored samples)", "",
              "| k per order | votes | agreement [95 % CI] | undecided |", "|---:|---:|---|---:|"]
    lines += [f"| {p.k} | {p.votes} | {_pct(p.accuracy)} [{_pct(p.ci95[0])}, {_pct(p.ci95[1])}] | {p.undecided} |"
              for p in m.maj_at_k]
    lines += ["", "![maj@k](maj_at_k.png)", "", "## Confusion (rows: human, columns: judge)", "",
              "| human \\ judge | A | B | undecided |", "|---|---:|---:|---:|"]
    lines += [f"| {h} | {row['A']} | {row['B']} | {row['undecided']} |" for h, row in m.confusion.items()]
    return "\n".join(lines) + "\n"
