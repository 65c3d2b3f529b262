"""The `labeler` command line: parse options, call `labeler.pipeline`, render with rich. No SQL, no model code."""

import functools
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.errors import LabelerError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Label prompt/response pairs with a generative reward model judge.\n\n"
    "Example: labeler annotate examples/pairs.jsonl && labeler status",
)

Db = Annotated[Path, typer.Option("--db", envvar="LABELER_DB", help="DuckDB file (env LABELER_DB).")]
Files = Annotated[list[Path], typer.Argument(help="JSONL or Parquet files of pairs.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or tables; errors only.")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on the first bad row instead of quarantining it.")]
MaxChars = Annotated[int, typer.Option("--max-chars", help="Longest text field accepted, in characters.")]
FIELDS = "Input fields"
PromptField = Annotated[str, typer.Option("--prompt-field", help="Field holding the prompt.", rich_help_panel=FIELDS)]
AField = Annotated[str, typer.Option("--a-field", help="Field holding response A.", rich_help_panel=FIELDS)]
BField = Annotated[str, typer.Option("--b-field", help="Field holding response B.", rich_help_panel=FIELDS)]
IdField = Annotated[str, typer.Option("--id-field", help="Field holding the pair id.", rich_help_panel=FIELDS)]
LabelField = Annotated[str, typer.Option("--label-field", help="Field holding a human label (A/B).",
                                         rich_help_panel=FIELDS)]
DEFAULT_DB = Path("labeler.duckdb")


def user_errors(fn):
    """Known failures print one `Error: ...` line on stderr and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabelerError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from None

    return wrapper


def _fields(prompt_field, a_field, b_field, id_field, label_field):
    from labeler.store import FieldMap

    return FieldMap(prompt=prompt_field, response_a=a_field, response_b=b_field, id=id_field, label=label_field)


@app.command()
@user_errors
def ingest(
    files: Files,
    db: Db = DEFAULT_DB,
    prompt_field: PromptField = "prompt",
    a_field: AField = "response_a",
    b_field: BField = "response_b",
    id_field: IdField = "id",
    label_field: LabelField = "label",
    strict: Strict = False,
    max_chars: MaxChars = 200_000,
    quiet: Quiet = False,
):
    """Store pairs from JSONL/Parquet files; bad rows go to quarantine with file, line and field.

    Example: labeler ingest data.jsonl --prompt-field question --a-field chosen --b-field other
    """
    from labeler import render
    from labeler.ingest import ingest_files
    from labeler.store import Store

    with Store(db) as store:
        reports = ingest_files(store, files, _fields(prompt_field, a_field, b_field, id_field, label_field),
                               strict, max_chars)
    if not quiet:
        render.console.print(render.ingest_table(reports))
        hint = render.quarantine_hint(reports)
        if hint:
            render.console.print(f"[yellow]{hint}[/yellow]")


@app.command()
@user_errors
def annotate(
    files: Annotated[list[Path] | None, typer.Argument(help="Files to ingest first (optional).")] = None,
    db: Db = DEFAULT_DB,
    mode: Annotated[str | None, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote "
                                             "(default: the judge version's mode, else direct).")] = None,
    samples: Annotated[int | None, typer.Option("--samples", "-k", help="Votes per order (cot; default 4).")] = None,
    model: Annotated[Path | None, typer.Option(help="Local Hugging Face model dir (default: the active judge version, "
                                               "else SmolLM2-135M-Instruct).")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Judge version (see `labeler judges list`).")] = None,
    relabel: Annotated[bool, typer.Option("--relabel", help="Re-judge every pair without a human label with the "
                                          "active judge; older labels are kept for comparison.")] = False,
    backend: Annotated[str, typer.Option(help="transformers (default), vllm (GPU extra), fake (tests).")] = "transformers",
    limit: Annotated[int | None, typer.Option(help="Judge at most N pending pairs.")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch; each batch is committed.")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Rationale length limit (cot).")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (cot).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top-p (cot).")] = 0.95,
    adaptive: Annotated[bool, typer.Option(
        help="cot: sample in rounds of 2 per order; stop once the vote is settled or each order repeats itself.")] = False,
    force_verdict: Annotated[bool, typer.Option(help="cot: a sample without [[A]]/[[B]] gets its verdict from the "
                                                     "logits after an appended marker (else it abstains).")] = True,
    prompt_field: PromptField = "prompt",
    a_field: AField = "response_a",
    b_field: BField = "response_b",
    id_field: IdField = "id",
    label_field: LabelField = "label",
    strict: Strict = False,
    max_chars: MaxChars = 200_000,
    quiet: Quiet = False,
):
    """Ingest files, then label every pair that has no label from the current judge (both orders pooled).

    Example: labeler annotate examples/pairs.jsonl --mode cot --samples 4
    """
    from labeler import pipeline, render
    from labeler.judge.judge import JudgeConfig
    from labeler.progress import progress_bar
    from labeler.store import Store

    if batch_size < 1 or (limit is not None and limit < 0):
        raise typer.BadParameter("--batch-size must be >= 1 and --limit >= 0")
    with Store(db) as store:
        spec = pipeline.resolve_judge(store, backend, str(model) if model else None, judge, relabel)
        mode = mode or spec.mode or "direct"
        default_k = spec.samples if spec.mode == mode and spec.samples else (4 if mode == "cot" else 1)
        try:
            config = JudgeConfig(mode=mode, samples=samples or default_k, seed=seed,
                                 max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                 adaptive=adaptive, force_verdict=force_verdict)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        judge_ = pipeline.build_judge(spec.backend, spec.model, config, batch_size)
        result = pipeline.annotate(
            store, files or [], judge_, _fields(prompt_field, a_field, b_field, id_field, label_field),
            limit=limit, batch_size=batch_size, strict=strict, max_chars=max_chars, skip_human=relabel,
            command="relabel" if relabel else "annotate",
            progress=lambda total: progress_bar(total, f"judging ({mode})", quiet=quiet),
        )
        compared, changed = pipeline.label_changes(store, result) if relabel else (0, 0)
    if not quiet:
        if files:
            render.console.print(render.ingest_table(result.ingested))
            hint = render.quarantine_hint(result.ingested)
            if hint:
                render.console.print(f"[yellow]{hint}[/yellow]")
        render.console.print(render.annotate_summary(result))
        if compared:
            render.console.print(f"relabel: {changed} of {compared} pairs changed label against the previous judge")


@app.command()
@user_errors
def status(db: Db = DEFAULT_DB, json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """Pairs by state, label balance, confidence histogram and recent runs.

    Example: labeler status --json
    """
    from labeler import render
    from labeler.store import Store

    if not db.exists():
        raise LabelerError(f"{db}: no such database (run `labeler ingest` or `labeler annotate` first)")
    with Store(db) as store:
        render.status(store.status(), json)


@app.command()
@user_errors
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file.")],
    db: Db = DEFAULT_DB,
    format: Annotated[str, typer.Option("--format", help="jsonl or parquet.")] = "jsonl",
    dpo: Annotated[bool, typer.Option("--dpo", help="Write prompt/chosen/rejected rows for TRL's DPOTrainer.")] = False,
    min_confidence: Annotated[float | None, typer.Option(help="Drop model labels below this confidence.")] = None,
    quiet: Quiet = False,
):
    """Write labels (human labels outrank model labels) with rationale, confidence, votes and provenance.

    Example: labeler export --out prefs.jsonl --dpo --min-confidence 0.7
    """
    from labeler import pipeline

    if format not in ("jsonl", "parquet"):
        raise typer.BadParameter(f"--format must be jsonl or parquet, got {format!r}")
    if not db.exists():
        raise LabelerError(f"{db}: no such database")
    n = pipeline.export(db, out, format, dpo, min_confidence)
    if not quiet:
        print(f"wrote {n} rows to {out}")


JUDGE = "Judge (resolved as in annotate)"
JudgeMode = Annotated[str | None, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote "
                                               "(default: the judge version's mode, else direct).", rich_help_panel=JUDGE)]
JudgeSamples = Annotated[int | None, typer.Option("--samples", "-k", help="Votes per order (cot; default 4).",
                                                  rich_help_panel=JUDGE)]
JudgeModel = Annotated[Path | None, typer.Option(help="Local Hugging Face model dir (default: the active judge version, "
                                                 "else SmolLM2-135M-Instruct).", rich_help_panel=JUDGE)]
JudgeVersion = Annotated[str | None, typer.Option("--judge", help="Judge version (see `labeler judges list`).",
                                                  rich_help_panel=JUDGE)]
JudgeBackend = Annotated[str, typer.Option(help="transformers (default), vllm (GPU extra), fake (tests).",
                                           rich_help_panel=JUDGE)]


def _resolve_judge(store, backend: str, model: Path | None, version: str | None, mode: str | None,
                   samples: int | None, batch_size: int, **decoding):
    """The judge `annotate` would use with these options (`pipeline.resolve_judge`), built."""
    from labeler import pipeline
    from labeler.judge.judge import JudgeConfig

    spec = pipeline.resolve_judge(store, backend, str(model) if model else None, version)
    mode = mode or spec.mode or "direct"
    default_k = spec.samples if spec.mode == mode and spec.samples else (4 if mode == "cot" else 1)
    try:
        config = JudgeConfig(mode=mode, samples=samples or default_k, **decoding)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return pipeline.build_judge(spec.backend, spec.model, config, batch_size)


@app.command("eval")
@user_errors
def eval_(
    files: Annotated[list[Path], typer.Argument(help="JSONL/Parquet files of human-labelled pairs (label A/B).",
                                                show_default=False)],
    db: Db = DEFAULT_DB,
    mode: JudgeMode = None,
    samples: JudgeSamples = None,
    model: JudgeModel = None,
    judge: JudgeVersion = None,
    backend: JudgeBackend = "transformers",
    seed: Annotated[int, typer.Option(help="Sampling seed.", rich_help_panel=JUDGE)] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Rationale length limit (cot).", rich_help_panel=JUDGE)] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (cot).", rich_help_panel=JUDGE)] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top-p (cot).", rich_help_panel=JUDGE)] = 0.95,
    adaptive: Annotated[bool, typer.Option(
        help="cot: sample in rounds of 2 per order; stop once the vote is settled or each order repeats itself.",
        rich_help_panel=JUDGE)] = False,
    force_verdict: Annotated[bool, typer.Option(help="cot: a sample without [[A]]/[[B]] gets its verdict from the "
                                                     "logits after an appended marker.", rich_help_panel=JUDGE)] = True,
    limit: Annotated[int | None, typer.Option(help="Use the first N human-labelled pairs of each file.")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch; each batch is committed.")] = 8,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write metrics.json, PNG plots and report.md here.")] = None,
    coverage: Annotated[float, typer.Option(help="Report the confidence threshold that keeps this share of labels.")] = 0.8,
    bins: Annotated[int, typer.Option(help="Equal-width confidence bins over [0.5, 1] (ECE, reliability).")] = 10,
    quiet: Quiet = False,
):
    """Judge human-labelled pairs (stored labels of the same judge are reused) and report agreement, position
    bias, maj@k, calibration (ECE before/after temperature scaling), coverage and confusion.

    Example: labeler eval ../shared/data/prefs/llmbar.jsonl --limit 50 --out eval-llmbar
    """
    from labeler import render
    from labeler.evaluation import EvalOptions, evaluate
    from labeler.progress import progress_bar
    from labeler.store import Store

    try:
        options = EvalOptions(limit=limit, batch_size=batch_size, bins=bins, coverage=coverage)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with Store(db) as store:
        judge_ = _resolve_judge(store, backend, model, judge, mode, samples, batch_size, seed=seed,
                                max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                adaptive=adaptive, force_verdict=force_verdict)
        result = evaluate(store, files, judge_, options, out, progress=lambda total: progress_bar(
            total, f"judging ({judge_.config.mode})", quiet=quiet))
    if not quiet:
        render.console.print(render.ingest_table(result.ingested))
        reused = result.metrics.n - len(result.judged.judged)
        render.console.print(f"Judged {len(result.judged.judged)} pairs, reused {max(reused, 0)} stored judgments.")
        for part in render.eval_tables(result.metrics):
            render.console.print(part)
        if result.written:
            render.console.print(f"Wrote {', '.join(p.name for p in result.written.values())} to {out}")


@app.command()
@user_errors
def calibrate(
    db: Db = DEFAULT_DB,
    mode: JudgeMode = None,
    samples: JudgeSamples = None,
    model: JudgeModel = None,
    judge: JudgeVersion = None,
    backend: JudgeBackend = "transformers",
    min_pairs: Annotated[int, typer.Option(help="Refuse to fit on fewer human-labelled pairs.")] = 20,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the judge's calibration instead.")] = False,
):
    """Fit a temperature to the judge's confidence on every human-labelled pair it judged and store it: status,
    export and review routing then read calibrated confidence (labels never change).

    Example: labeler calibrate --mode cot --samples 4
    """
    from labeler import render
    from labeler.evaluation import calibrate as fit
    from labeler.store import Store

    if min_pairs < 1:
        raise typer.BadParameter("--min-pairs must be >= 1")
    with Store(db) as store:
        judge_ = _resolve_judge(store, backend, model, judge, mode, samples, 1)
        key = (judge_.judge_id, judge_.config.mode, judge_.config.samples)
        if clear:
            print(f"removed {store.delete_calibration(*key)} calibration(s) of {key[0]} ({key[1]}, K={key[2]})")
            return
        record = fit(store, *key, min_pairs=min_pairs)
    render.console.print(render.calibration_summary(record))


from labeler.cli_review import review_app  # noqa: E402 - the sub-app imports the shared options above

app.add_typer(review_app, name="review")


from labeler.cli_judges import judges_app, retrain  # noqa: E402 - imports the shared options above

app.command()(retrain)
app.add_typer(judges_app, name="judges")


def main() -> None:  # pragma: no cover
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
