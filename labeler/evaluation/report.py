"""`labeler eval` and `labeler calibrate` as library calls: ingest human-labelled files, judge them through
`pipeline.annotate` (stored judgments of the same judge key are reused), compute metrics from the store,
write metrics.json, plots and report.md; fit and store a temperature per judge."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labeler import eval_metrics
from labeler.errors import LabelerError
from labeler.ingest import FileReport, check_path, ingest_file
from labeler.judge.judge import Judge
from labeler.pipeline import AnnotateResult, annotate
from labeler.store import Store
from labeler.store.calibrations import now
from schemas import CalibrationRecord, EvalMetrics


@dataclass
class EvalOptions:
    limit: int | None = None  # first N human-labelled pairs of each file
    batch_size: int = 8
    bins: int = 10
    folds: int = 5
    coverage: float = 0.8

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.batch_size < 1 or self.bins < 1 or self.folds < 2:
            raise ValueError(f"need batch_size >= 1, bins >= 1, folds >= 2; got {self.batch_size}, {self.bins}, {self.folds}")
        if not 0.0 < self.coverage <= 1.0:
            raise ValueError(f"coverage must be within (0, 1], got {self.coverage}")


@dataclass
class EvalResult:
    metrics: EvalMetrics
    ingested: list[FileReport]
    judged: AnnotateResult
    written: dict[str, Path] = field(default_factory=dict)


def eval_pairs(store: Store, files: list[Path], limit: int | None) -> tuple[list[FileReport], list[str]]:
    """Ingest the files; the ids of their human-labelled pairs (first `limit` of each file), in file order."""
    for path in files:  # a typo in the last file stores nothing
        check_path(path)
    reports, ids = [], []
    for path in files:
        report = ingest_file(store, path)
        reports.append(report)
        found = [] if report.empty else store.staged_pair_ids(labelled_only=True)
        ids.extend(found[:limit] if limit is not None else found)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise LabelerError(f"{', '.join(map(str, files))}: no human-labelled pairs (rows need a label of A or B)")
    return reports, ids


def evaluate(store: Store, files: list[Path], judge: Judge, options: EvalOptions = EvalOptions(),
             out: Path | None = None, progress: Callable[[int], Callable] | None = None) -> EvalResult:
    reports, ids = eval_pairs(store, files, options.limit)
    judged = annotate(store, [], judge, batch_size=options.batch_size, progress=progress, pair_ids=ids,
                      command="eval")
    rows = store.eval_rows(judge.judge_key, ids)
    if not rows:
        raise LabelerError("no judged human-labelled pairs to evaluate (human labels split evenly?)")
    samples = store.eval_samples(judge.judge_key, ids)
    config = judge.config
    stored = store.calibration(judge.judge_id, config.mode, config.samples)
    metrics = eval_metrics.summarize(
        rows, samples, files=[str(f) for f in files], judge_id=judge.judge_id, judge_key=judge.judge_key,
        mode=config.mode, k=config.samples, stored_temperature=stored.temperature if stored else None,
        bins=options.bins, folds=options.folds, coverage_target=options.coverage,
    )
    result = EvalResult(metrics, reports, judged)
    if out is not None:
        result.written = write_outputs(metrics, out)
    return result


def write_outputs(metrics: EvalMetrics, out: Path) -> dict[str, Path]:
    from labeler import eval_plots

    if out.exists() and not out.is_dir():
        raise LabelerError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(metrics.model_dump_json(indent=2) + "\n")
    written = {"metrics": out / "metrics.json", **eval_plots.write_all(metrics, out)}
    (out / "report.md").write_text(report_markdown(metrics))
    written["report"] = out / "report.md"
    return written


def calibrate(store: Store, judge_id: str, mode: str, samples: int, min_pairs: int = 20,
              bins: int = 10) -> CalibrationRecord:
    """Fit the temperature on every human-labelled pair this judge (id, mode, K) labelled, and store it."""
    rows = store.calibration_rows(judge_id, mode, samples)
    decided = [r for r in rows if r.label is not None]
    if len(decided) < min_pairs:
        raise LabelerError(f"calibrating {judge_id} ({mode}, K={samples}) needs at least {min_pairs} human-labelled "
                           f"pairs it judged, found {len(decided)} (run `labeler eval` on a labelled file first)")
    temperature = eval_metrics.fit_rows(rows)
    hits = [eval_metrics.correct(r) for r in decided]
    after = eval_metrics.apply_temperature(decided, temperature)
    sources = sorted({r.source or "-" for r in rows})
    record = CalibrationRecord(
        judge_id=judge_id, mode=mode, samples=samples, temperature=temperature, n_pairs=len(rows),
        ece_before=eval_metrics.expected_calibration_error([r.confidence for r in decided], hits, bins),
        ece_after=eval_metrics.expected_calibration_error(after, hits, bins),
        fitted_on=f"{len(rows)} human-labelled pairs (sources: {', '.join(sources)})", fitted_at=now(),
    )
    store.save_calibration(record)
    return record


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
              + (f"Stored calibration applied by status/export/routing: T = {m.calibration.stored_temperature:.3f}."
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
