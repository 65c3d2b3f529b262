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

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from labeler import exporting, pipeline
from labeler.errors import LabelerError, UsageError
from labeler.evaluation import EvalOptions, EvalResult
from labeler.evaluation import evaluate as evaluate_judge
from labeler.ingestion import DEFAULT_MAX_CHARS, FileReport, ingest_files
from labeler.judge.prompts import check_source
from labeler.pipeline import AnnotateResult
from labeler.progress import progress_bar, silent
from labeler.store import FieldMap, Store
from schemas import RetrainResult, StatusReport

PathLike = str | Path


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


def annotate(db: PathLike, inputs: Sequence[PathLike] = (), *, model: PathLike | None = None, judge: str | None = None,
             backend: str = "transformers", mode: str | None = None, samples: int | None = None,
             dtype: str | None = None, device: str | None = "auto", backend_options: dict | None = None,
             batch_size: int = 8, limit: int | None = None, relabel: bool = False,
             seed: int = 0, max_new_tokens: int = 256, temperature: float = 1.0, top_p: float = 0.95,
             adaptive: bool = False, force_verdict: bool = True, template: PathLike | None = None,
             criteria: str | None = None, fields: FieldMap = FieldMap(), strict: bool = False,
             max_chars: int = DEFAULT_MAX_CHARS, progress: bool = False,
             on_ingested: Callable[[list[FileReport]], None] | None = None,
             on_resume: Callable[[str], None] | None = None, runner: pipeline.Runner | None = None
             ) -> AnnotateResult:
    """Ingest `inputs` (as `ingest`), then label every stored pair without a label from the judge: `judge` (a trained
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
    with Store(db) as store:
        judge_ = _judge(store, model, judge, backend, mode, samples, batch_size, relabel, dtype, device,
                        backend_options, decoding)
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
    return result


def export(db: PathLike, out: PathLike | None = None, *, format: str | None = None, dpo: bool = False,
           hf: PathLike | None = None, columns: Sequence[str] | None = None,
           min_confidence: float | None = None) -> int:
    """Write one row per labelled pair (a human verdict, A/B/tie, outranks the model's label) with its provenance and
    the input's extra fields to `out` (JSONL, or Parquet when `format` says so or the name ends in .parquet) and/or
    to `hf`, a `datasets` folder (save_to_disk). `dpo`: TRL prompt/chosen/rejected rows instead (ties left out),
    conversational when any prompt was given as messages. `columns`: the columns to write (with `dpo`: added ones).
    Returns the number of rows."""
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:  # also refuses nan
        raise UsageError(f"min_confidence must be a number in [0, 1], got {min_confidence}")
    if not Path(db).exists():
        raise LabelerError(f"{db}: no such database")
    with _options():
        return exporting.export(Path(db), Path(out) if out is not None else None, format, dpo, min_confidence,
                               list(columns) if columns is not None else None, Path(hf) if hf is not None else None)


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
          progress: bool = False, layers: int = 8):
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
