"""The eval and calibrate stages (`labeler eval`, `labeler calibrate`) as library calls: ingest human-labelled
files, judge them through `pipeline.annotate` (stored judgments of the same judge key are reused), compute the
metrics from the store, write the report; fit and store a temperature per judge."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labeler.errors import LabelerError
from labeler.extras import require
from labeler.evaluation import metrics as eval_metrics
from labeler.evaluation.calibration import MAX_SCALE, MIN_SCALE
from labeler.evaluation.report import write_outputs
from labeler.ingestion import FileReport, ingest_part, open_inputs
from labeler.judge.judge import Judge
from labeler.pipeline import AnnotateResult, Runner, annotate
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
    """Ingest the files (or datasets); the ids of their human-labelled pairs (first `limit` of each file or split),
    in file order."""
    reports, ids = [], []
    for part in open_inputs(files):  # all opened first: a typo in the last file stores nothing
        report = ingest_part(store, part)
        reports.append(report)
        found = [] if report.empty else store.staged_pair_ids(labelled_only=True)
        ids.extend(found[:limit] if limit is not None else found)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise LabelerError(f"{', '.join(map(str, files))}: no human-labelled pairs (rows need a label of A or B)")
    return reports, ids


def evaluate(store: Store, files: list[Path], judge: Judge, options: EvalOptions = EvalOptions(),
             out: Path | None = None, progress: Callable[[int], Callable] | None = None,
             runner: Runner | None = None) -> EvalResult:
    """`runner`: where the pairs not judged yet are judged (default this process; `labeler.scale.RayRunner`)."""
    if out is not None:
        require("plots", "writing the eval report (its PNG plots)")
    reports, ids = eval_pairs(store, files, options.limit)
    judged = annotate(store, [], judge, batch_size=options.batch_size, progress=progress, pair_ids=ids,
                      command="eval", runner=runner)
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


BOUNDS = (1.0 / MIN_SCALE, 1.0 / MAX_SCALE)


def calibrate(store: Store, judge_id: str, mode: str, samples: int, min_pairs: int = 20,
              bins: int = 10, force: bool = False) -> CalibrationRecord:
    """Fit the temperature on every human-labelled pair this judge (id, mode, K) labelled, and store it. A fit
    that ends on a bound of its search (no signal to scale: every confidence would become ~0.5, or a perfect
    separator) is refused unless `force`."""
    rows = store.calibration_rows(judge_id, mode, samples)
    decided = [r for r in rows if r.label is not None]
    if len(decided) < min_pairs:
        raise LabelerError(f"calibrating {judge_id} ({mode}, K={samples}) needs at least {min_pairs} human-labelled "
                           f"pairs it judged, found {len(decided)} (run `labeler eval` on a labelled file first)")
    temperature = eval_metrics.fit_rows(rows)
    if temperature in BOUNDS and not force:
        accuracy = sum(eval_metrics.correct(r) for r in decided) / len(decided)
        raise LabelerError(f"the temperature fit hit its bound T = {temperature:g} on {len(decided)} pairs (agreement "
                           f"{accuracy:.1%}): the judge's confidence "
                           f"{'carries no signal' if temperature > 1 else 'separates them perfectly'} here; nothing "
                           "stored (--force stores it)")
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
