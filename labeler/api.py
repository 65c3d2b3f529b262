"""labeler as a library: the stages the CLI runs, as typed functions. The CLI calls these same functions.

    import labeler

    labeler.ingest("labels.duckdb", ["prefs.jsonl", "my_dataset:train"])
    result = labeler.annotate("labels.duckdb", model="./my-judge")
    labeler.export("labels.duckdb", out="dpo.jsonl", dpo=True)

Each call opens the store (a DuckDB file, created on first use) and closes it before returning. Bad input raises
`labeler.errors.LabelerError` (one line naming the file, line and field); a bad option or combination of options
raises `labeler.errors.UsageError` (a ValueError) before any work is done. Results are the dataclasses and pydantic
records the CLI renders (`FileReport`, `AnnotateResult`, `EvalResult`, `schemas.RetrainResult`, ...).
"""

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from tempfile import TemporaryDirectory

from labeler import exporting, pipeline, rows
from labeler.errors import LabelerError, UsageError, option
from labeler.evaluation import EvalOptions, EvalResult
from labeler.evaluation import evaluate as evaluate_judge
from labeler.ingestion import DEFAULT_MAX_CHARS, FileReport, ingest_files
from labeler.judge.prompts import check_source
from labeler.pipeline import AnnotateResult
from labeler.progress import progress_bar, silent
from labeler.store import FieldMap, Store
from schemas import AuditReport, CalibrationRecord, JudgeVersion, RetrainResult, StatusReport

if TYPE_CHECKING:
    from datasets import Dataset

    from labeler.review.argilla import PullResult, PushResult

if TYPE_CHECKING:
    from labeler.ranking.run import RankResult
    from schemas.rankings import RankEvalMetrics

PathLike = str | Path
Rows = list[dict]  # or a `datasets.Dataset`: datasets is imported only where one is given


@contextmanager
def _options(*errors: type[Exception]) -> Iterator[None]:
    """Options objects (JudgeConfig, EvalOptions, the retrain configs) reject bad values with ValueError."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, *errors) as exc:
        raise UsageError(str(exc)) from None


def _bars(on: bool, description: str) -> Callable:
    return (lambda total: progress_bar(total, description)) if on else silent


def ingest(db: PathLike, inputs: Sequence[PathLike], *, fields: FieldMap = FieldMap(), strict: bool = False,
           max_chars: int = DEFAULT_MAX_CHARS, seed: int = 0) -> list[FileReport]:
    """Store the pairs of files (JSONL, JSON, Parquet, CSV), `datasets` save_to_disk folders and Hub dataset ids
    already in the local Hugging Face cache (`NAME:SPLIT` for one split). The layout (ours, TRL explicit or implicit
    prompt, UltraFeedback) is detected per input (`FileReport.layout`); bad rows go to quarantine (`strict`: nothing
    from that input is stored instead). `seed` draws the A/B order of pairs whose preference is known."""
    with Store(db) as store:
        return ingest_files(store, [Path(p) for p in inputs], fields, strict, max_chars, seed)


def prompt_options(template: PathLike | None, criteria: str | None) -> dict:
    """`template` (a jinja file with the blocks of labeler/judge/templates/*.jinja) read and checked, so a template
    that cannot judge is one error naming the file before anything is loaded or judged."""
    options: dict = {} if criteria is None else {"criteria": criteria}
    if template is None:
        return options
    path = Path(template)
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelerError(f"{path}: cannot read the template: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LabelerError(f"{path}: the template is not UTF-8 text") from None
    try:
        check_source(source)
    except ValueError as exc:
        raise LabelerError(f"{path}: {exc}") from None
    return options | {"template": source}


def _judge(store: Store, model: PathLike | None, judge: str | None, backend: str, mode: str | None,
           samples: int | None, batch_size: int, relabel: bool, dtype: str | None, device: str | None,
           backend_options: dict | None, decoding: dict):
    with _options():
        if batch_size < 1:
            raise UsageError(f"batch_size must be >= 1, got {batch_size}")
        return pipeline.judge_for(store, backend, model, judge, mode, samples, batch_size, relabel, dtype, device,
                                  backend_options, **decoding)


def annotate(source: "PathLike | Dataset | Rows", inputs: Sequence[PathLike] = (), *, db: PathLike | None = None,
             model: PathLike | None = None, judge: str | None = None,
             backend: str = "transformers", mode: str | None = None, samples: int | None = None,
             dtype: str | None = None, device: str | None = "auto", backend_options: dict | None = None,
             batch_size: int = 8, limit: int | None = None, relabel: bool = False,
             seed: int = 0, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 0.95,
             adaptive: bool = False, force_verdict: bool = True, template: PathLike | None = None,
             criteria: str | None = None, fields: FieldMap = FieldMap(), strict: bool = False,
             max_chars: int = DEFAULT_MAX_CHARS, progress: bool = False,
             on_ingested: Callable[[list[FileReport]], None] | None = None,
             on_resume: Callable[[str], None] | None = None, runner: pipeline.Runner | None = None
             ) -> "AnnotateResult | Dataset | Rows":
    """`annotate(rows)`: label a `datasets.Dataset` or a list of dicts (prompt/response_a/response_b, or the names
    `fields` gives) and return the same kind with the columns pair_id, label (A, B, or None: undecided or a
    quarantined row), label_source, confidence, rationale and judge_id added; `db` keeps the store (and so a
    resumable run) in that file, else it lives in a temporary folder for the call.

    `annotate(db, inputs)`: ingest `inputs` (as `ingest`) into the store `db`, then label every stored pair without a label from the judge: `judge` (a trained
    version, `starter` or `base`), else `model` (a local Hugging Face model dir), else the active version, else the
    default model. `mode`: direct (verdict-token logits) or cot (`samples` rationales per order, voted). Both orders
    are judged and pooled; each batch is committed, so a killed run resumes. `template` (a jinja file with the
    shipped templates' blocks) and `criteria` (what to prefer) change the judge prompt, and so the judge key.
    `relabel`: re-judge every pair without a
    human label (`AnnotateResult.compared`/`changed` count the labels that moved). `on_ingested` sees the ingest
    reports before judging starts; `on_resume` hears "resuming run X: N of M done" when the last run of this judge
    stopped before its end; `progress` shows a progress bar on stderr. `runner` judges elsewhere
    (`labeler.scale.RayRunner`); this process still writes every batch to the store."""
    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    decoding = dict(seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                    adaptive=adaptive, force_verdict=force_verdict, **prompt_options(template, criteria))
    data = source if rows.is_rows(source) else None
    if data is not None and inputs:
        raise UsageError("pass rows or input files, not both")
    with ExitStack() as stack:
        path = source if data is None else db or Path(stack.enter_context(TemporaryDirectory())) / "labels.duckdb"
        store = stack.enter_context(Store(path))
        judge_ = _judge(store, model, judge, backend, mode, samples, batch_size, relabel, dtype, device,
                        backend_options, decoding)
        if data is not None:
            report, pair_ids = rows.ingest_rows(store, data, fields, strict, max_chars)
            ingested = [report]
        else:
            ingested = ingest_files(store, [Path(p) for p in inputs], fields, strict, max_chars)
        if on_ingested is not None:
            on_ingested(ingested)
        command = "relabel" if relabel else "annotate"
        resuming = pipeline.resume_note(store, judge_, command, skip_human=relabel)
        if resuming and on_resume is not None:
            on_resume(resuming)
        result = pipeline.annotate(store, [], judge_, limit=limit, batch_size=batch_size, skip_human=relabel,
                                   command=command, runner=runner,
                                   progress=_bars(progress, f"judging ({judge_.config.mode})"))
        result.ingested = ingested
        if relabel:
            result.compared, result.changed = pipeline.label_changes(store, result)
        if data is not None:
            wanted = set(pair_ids)
            return rows.with_labels(data, pair_ids, {r.pair_id: r for r in store.export_rows() if r.pair_id in wanted})
    return result


def export(source: "PathLike | Dataset | Rows", out: PathLike | None = None, *, format: str | None = None,
           dpo: bool = False, hf: PathLike | None = None, columns: Sequence[str] | None = None,
           min_confidence: float | None = None, judge: str | None = None, mixed: bool = False,
           fields: FieldMap = FieldMap(), on_warning: Callable[[str], None] | None = None,
           rankings: bool = False, pairs: str | None = None, min_margin: float | None = None
           ) -> "int | Dataset | Rows":
    """`export(rows, dpo=True)`: TRL's prompt/chosen/rejected rows (the same kind: a `datasets.Dataset` or a list
    of dicts) from rows as `annotate(rows)` returned them; A/B labels only, model labels under `min_confidence`
    left out, `columns` of the rows kept. `DPOTrainer(train_dataset=labeler.export(ds, dpo=True))`.

    `export(db)`: the store's labels, one row per labelled pair (a human verdict, A/B/tie, outranks the model's
    label) with its provenance and the input's extra fields, returned as a `datasets.Dataset`; or written to `out`
    (JSONL, or Parquet when `format` says so or the name ends in .parquet) and/or to `hf`, a `datasets` folder
    (save_to_disk), returning the number of rows. `dpo`: TRL prompt/chosen/rejected rows instead (ties left out),
    conversational when any prompt was given as messages. `columns`: the columns to write (with `dpo`: added
    ones). `judge` (a version name or a judge id): that judge's model labels only, with the human labels; model
    labels from several judges raise LabelerError unless `judge` or `mixed` is given. A judge measured below 60 %
    agreement with people (the starter) gives one warning line (`on_warning`, else `warnings.warn`).

    `rankings`: one row per prompt of N responses (`labeler rank`) with score, rank and uncertainty instead; `pairs`
    (with `dpo`): DPO pairs from those rankings, best-worst, best-rest, all or adjacent; `min_margin` leaves out the
    pairs (or rankings) whose score difference (best minus worst) is smaller."""
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:  # also refuses nan
        raise UsageError(f"{option('min_confidence')} must be a number in [0, 1], got {min_confidence}")
    if rows.is_rows(source):
        if not dpo or out is not None or hf is not None:
            raise UsageError("rows export as TRL rows: pass dpo=True (write them with the Dataset's own to_json / "
                             "save_to_disk)")
        return rows.preference_rows(source, fields, min_confidence, list(columns or []))
    if not Path(source).exists():
        raise LabelerError(f"{source}: no such database")
    if rankings or pairs is not None or min_margin is not None:
        return _export_rankings(source, out, format, dpo, hf, columns, min_confidence, rankings, pairs, min_margin)
    with _options():
        if out is None and hf is None:
            return _export_dataset(Path(source), dpo, min_confidence, columns, judge, mixed, on_warning or _warn)
        return exporting.export(Path(source), Path(out) if out is not None else None, format, dpo, min_confidence,
                                list(columns) if columns is not None else None, Path(hf) if hf is not None else None,
                                judge=judge, mixed=mixed, warn=on_warning or _warn)


def _export_dataset(db: Path, dpo: bool, min_confidence: float | None, columns: Sequence[str] | None,
                    judge: str | None, mixed: bool, warn: Callable[[str], None]) -> "Dataset":
    from datasets import Dataset

    table = exporting.export_table(db, dpo, min_confidence, list(columns) if columns is not None else None,
                                   judge=judge, mixed=mixed, warn=warn)
    return Dataset(table)


def _warn(message: str) -> None:
    warnings.warn(message.removeprefix("warning: "), UserWarning, stacklevel=3)


def _export_rankings(db, out, format, dpo, hf, columns, min_confidence, rankings, pairs, min_margin) -> int:
    from labeler.ranking import export as ranking_export

    if rankings == (pairs is not None) or (pairs is not None and not dpo) or (rankings and dpo):
        raise UsageError("export rankings with --rankings, or DPO pairs from them with --dpo --pairs MODE")
    if columns is not None or min_confidence is not None:
        raise UsageError("--columns and --min-confidence apply to pair exports, not to --rankings or --pairs")
    if min_margin is not None and not 0.0 <= min_margin < float("inf"):
        raise UsageError(f"min_margin must be a number >= 0, got {min_margin}")
    with _options():
        return ranking_export.export(Path(db), Path(out) if out is not None else None, format, pairs, min_margin,
                                     Path(hf) if hf is not None else None)


def rank(db: PathLike, inputs: Sequence[PathLike] = (), *, model: PathLike | None = None, judge: str | None = None,
         backend: str = "transformers", mode: str | None = None, samples: int | None = None,
         dtype: str | None = None, device: str | None = "auto", backend_options: dict | None = None,
         batch_size: int = 8, budget: int | None = None, limit: int | None = None, seed: int = 0,
         max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 0.95, template: PathLike | None = None,
         criteria: str | None = None, fields: FieldMap = FieldMap(), strict: bool = False,
         max_chars: int = DEFAULT_MAX_CHARS, progress: bool = False) -> "RankResult":
    """Ingest `inputs` (rows with N responses per prompt: `prompt` + `responses`, UltraFeedback or TRL
    `completions`), then rank every group the judge (chosen as in `annotate`) has not ranked: a reward judge scores
    each response once; a pairwise judge compares the pairs of a sparse design (all pairs up to N = 4; `budget`
    caps the pairs per prompt), both orders, and a Bradley-Terry fit turns them into scores with intervals. The
    pairs are stored as ordinary pairs and judgments, and groups are committed in chunks, so a killed run resumes.
    Returns a `labeler.ranking.run.RankResult`."""
    from labeler.ranking.run import rank as rank_groups

    if limit is not None and limit < 0:
        raise UsageError(f"limit must be >= 0, got {limit}")
    if budget is not None and budget < 1:
        raise UsageError(f"budget must be >= 1, got {budget}")
    decoding = dict(seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                    **prompt_options(template, criteria))
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, batch_size, False, dtype, device,
                        backend_options, decoding)
        return rank_groups(store, [Path(p) for p in inputs], judge_, fields, strict, max_chars, budget, limit,
                           batch_size, progress=_bars(progress, "ranking"))


def evaluate_rankings(db: PathLike, inputs: Sequence[PathLike], *, model: PathLike | None = None,
                      judge: str | None = None, backend: str = "transformers", mode: str | None = None,
                      samples: int | None = None, dtype: str | None = None, device: str | None = "auto",
                      backend_options: dict | None = None, batch_size: int = 8, budget: int | None = None,
                      limit: int | None = None, seed: int = 0,
                      progress: bool = False) -> "tuple[RankEvalMetrics, RankResult]":
    """Rank the prompts of `inputs` with the judge chosen as in `annotate` and compare with the humans: rows with
    rated responses (ratings are the truth), or human-labelled pairs that share prompts (each prompt's distinct
    responses are ranked; the labels are its votes). Returns (`schemas.rankings.RankEvalMetrics`, the RankResult):
    pairwise agreement implied by the rankings, Kendall's tau per prompt and top-1 accuracy, with 95 % intervals."""
    from labeler.ranking.evaluate import evaluate as evaluate_groups

    if limit is not None and limit < 1:
        raise UsageError(f"limit must be >= 1, got {limit}")
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, batch_size, False, dtype, device,
                        backend_options, {"seed": seed})
        return evaluate_groups(store, [Path(p) for p in inputs], judge_, budget, limit, batch_size,
                               progress=_bars(progress, "ranking"))


def evaluate(db: PathLike, inputs: Sequence[PathLike], *, model: PathLike | None = None, judge: str | None = None,
             backend: str = "transformers", mode: str | None = None, samples: int | None = None,
             dtype: str | None = None, device: str | None = "auto", backend_options: dict | None = None,
             batch_size: int = 8, limit: int | None = None, seed: int = 0,
             max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 0.95, adaptive: bool = False,
             force_verdict: bool = True, template: PathLike | None = None, criteria: str | None = None,
             out: PathLike | None = None, coverage: float = 0.8, bins: int = 10, progress: bool = False,
             runner: pipeline.Runner | None = None) -> EvalResult:
    """Judge the human-labelled (A/B) pairs of `inputs` (the first `limit` of each) with the judge chosen as in
    `annotate`, reusing stored judgments of the same judge key, and measure agreement (Wilson interval), position
    bias, maj@k, calibration and coverage (`EvalResult.metrics`); `out` also gets metrics.json, plots and report.md."""
    decoding = dict(seed=seed, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                    adaptive=adaptive, force_verdict=force_verdict, **prompt_options(template, criteria))
    with _options():
        options = EvalOptions(limit=limit, batch_size=batch_size, bins=bins, coverage=coverage)
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, batch_size, False, dtype, device,
                        backend_options, decoding)
        return evaluate_judge(store, [Path(p) for p in inputs], judge_, options, Path(out) if out else None,
                              progress=_bars(progress, f"judging ({judge_.config.mode})"), runner=runner)


def retrain(db: PathLike, *, gold: Sequence[PathLike] = (), method: str | None = None, config: PathLike | None = None,
            model: PathLike | None = None, judge: str | None = None, judges_dir: PathLike | None = None,
            options: dict[str, dict] | None = None, progress: bool = False,
            log: Callable[[str], None] | None = None) -> RetrainResult:
    """Train a new judge version on the store's human A/B labels (after ingesting `gold` files) with `method`
    (star-dpo, star-sft, genrm-sft, bt, bt-probe; default: bt-probe continuing the heads of a probe judge such as
    the starter, star-dpo after a generative judge), starting from `judge`/`model`/the active judge, and promote it
    if it is at least as good on the held-out split. `options`: overrides by section, as the YAML `config` holds them, e.g.
    `{"train": {"max_steps": 10}, "star": {"samples": 2}}`."""
    from labeler import retraining

    flags = {name: dict(section) for name, section in (options or {}).items()}
    if method is not None:
        flags.setdefault("retrain", {})["method"] = method
    with _options(OSError):  # a config file that cannot be read is a bad option too
        plan = retraining.make_plan(Path(db), flags, Path(config) if config else None,
                                    Path(judges_dir) if judges_dir else None, Path(model) if model else None,
                                    [Path(g) for g in gold], not progress, judge)
    bars = (lambda total, what: progress_bar(total, what)) if progress else silent
    with Store(db) as store:
        return retraining.retrain(store, plan, bars, log or (lambda message: None))


def audit(db: PathLike, files: Sequence[PathLike] = (), *, judge: str | None = None, scratch: bool = False,
          folds: int = 5, confidence: float = 0.7, members: int = 10, judges_dir: PathLike | None = None,
          progress: bool = False, layers: int = 8) -> "AuditReport":
    """Cross-fit the probe judge's heads (or, with `scratch`, new ones) on the store's human labels (after ingesting
    `files`) and flag the labels the heads confidently contradict (`schemas.AuditReport`); `review push --suspects`
    sends the flagged ones for a second look."""
    from labeler.evaluation.audit import audit as run_audit

    bars = (lambda total, what: progress_bar(total, what)) if progress else silent
    with Store(db) as store:
        return run_audit(store, [Path(f) for f in files], judge, scratch, folds, confidence, members,
                         Path(judges_dir) if judges_dir else None, bars, layers)


def status(db: PathLike) -> StatusReport:
    """Pairs by state, model and human label balance, confidence histogram, quarantine count, recent runs."""
    with Store(db, create=False, read_only=True) as store:
        return store.status()


def calibrate(db: PathLike, *, judge: str | None = None, model: PathLike | None = None,
              backend: str = "transformers", mode: str | None = None, samples: int | None = None,
              backend_options: dict | None = None, min_pairs: int = 20, force: bool = False) -> CalibrationRecord:
    """Fit a temperature to the judge's confidence (the judge chosen as in `annotate`) on every human-labelled pair
    it judged, and store it: status, export and review routing then read calibrated confidence (labels never
    change). Fewer than `min_pairs` such pairs raise LabelerError; so does a fit on a bound of its search, unless
    `force`. `clear_calibration` removes it."""
    from labeler.evaluation import calibrate as fit

    if min_pairs < 1:
        raise UsageError(f"{option('min_pairs')} must be >= 1, got {min_pairs}")
    _must_exist(db)
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, 1, False, None, "auto", backend_options, {})
        return fit(store, judge_.judge_id, judge_.config.mode, judge_.config.samples, min_pairs=min_pairs,
                   force=force)


def clear_calibration(db: PathLike, *, judge: str | None = None, model: PathLike | None = None,
                      backend: str = "transformers", mode: str | None = None, samples: int | None = None,
                      backend_options: dict | None = None) -> int:
    """Remove the stored calibration of the judge chosen as in `annotate`; returns how many were removed (0 or 1)."""
    _must_exist(db)
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, 1, False, None, "auto", backend_options, {})
        return store.delete_calibration(judge_.judge_id, judge_.config.mode, judge_.config.samples)


def judges(db: PathLike) -> list[JudgeVersion]:
    """The judge versions: the shipped starter, then every trained one, with method, parent, held-out agreement
    (and the parent's) and which one is active."""
    from trainer.versions import list_versions

    _must_exist(db)
    with Store(db, create=False, read_only=True) as store:
        return list_versions(store)


def use_judge(db: PathLike, version: str) -> JudgeVersion | None:
    """Make `version` the active judge (`annotate` uses it when no `model`/`judge` is given); `default` (or
    `starter`) makes the default judge judge again and returns None."""
    from trainer.versions import use

    _must_exist(db)
    with Store(db) as store:
        return use(store, version)


def review_push(db: PathLike, *, url: str | None = None, api_key: str | None = None,
                dataset: str = "labeler-review", workspace: str = "reviewers", threshold: float = 0.7,
                audit_rate: float = 0.05, seed: int = 0, limit: int | None = None, batch_size: int = 100,
                min_submitted: int = 1, most_doubtful: int | float | None = None,
                suspects: bool = False) -> "PushResult":
    """Route the pairs that need a person (confidence under `threshold`, order-inconsistent, split votes, and an
    `audit_rate` sample of the rest) into the review queue and send unsent ones to the Argilla `dataset` (at most
    `limit`). `most_doubtful`: a budget instead of the threshold, a number of pairs (int) or a share (float < 1) of
    the most doubtful; `suspects`: the human labels `labeler.audit` flagged instead of model labels. `url`/`api_key`: an Argilla server (default: the one `labeler review serve` started). Returns a
    `labeler.review.argilla.PushResult`."""
    from labeler.review import argilla
    from labeler.review.routing import RoutingRules

    if batch_size < 1 or min_submitted < 1 or (limit is not None and limit < 0):
        raise UsageError("batch_size and min_submitted must be >= 1, limit >= 0")
    budget = {} if most_doubtful is None else \
        {"most_share": most_doubtful} if isinstance(most_doubtful, float) else {"most": most_doubtful}
    with _options():
        rules = RoutingRules(threshold=threshold, audit_rate=audit_rate, seed=seed, **budget)
    _must_exist(db)
    client = _argilla_client(url, api_key)
    with Store(db) as store:
        return argilla.push(store, client, dataset, workspace, rules, limit, batch_size, min_submitted,
                            suspects=suspects)


def review_pull(db: PathLike, *, url: str | None = None, api_key: str | None = None,
                dataset: str = "labeler-review", workspace: str = "reviewers") -> "PullResult":
    """Store the reviewers' answers in `dataset` as human labels (they outrank model labels). Returns a
    `labeler.review.argilla.PullResult` (counts, and how often the judge agreed with the reviewers)."""
    from labeler.review import argilla

    _must_exist(db)
    client = _argilla_client(url, api_key)
    with Store(db) as store:
        return argilla.pull(store, client, dataset, workspace)


def _argilla_client(url: str | None, api_key: str | None):
    from labeler.review import argilla, server

    if bool(url) != bool(api_key):
        raise UsageError(f"pass both {option('url')} and {option('api_key')}, or neither (the local server's)")
    if not url:
        creds = server.local_credentials(server.default_data_dir())
        url, api_key = creds.url, creds.api_key
    return argilla.connect(url, api_key)


def _must_exist(db: PathLike) -> None:
    if not Path(db).exists():
        raise LabelerError(f"{db}: no such database")


def default_model() -> Path:
    """The default model (SmolLM2-135M-Instruct) as a Hugging Face model directory, fetched and converted on first
    use: what judges when no judge is chosen, and a small policy for a TRL example."""
    from labeler.judge.backends.models import default_model_dir

    return default_model_dir()
