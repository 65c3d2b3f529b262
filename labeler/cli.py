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
    mode: Annotated[str, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote.")] = "direct",
    samples: Annotated[int | None, typer.Option("--samples", "-k", help="Votes per order (cot; default 4).")] = None,
    model: Annotated[Path | None, typer.Option(help="Local Hugging Face model dir (default: SmolLM2-135M-Instruct).")] = None,
    backend: Annotated[str, typer.Option(help="transformers (default), vllm (GPU extra), fake (tests).")] = "transformers",
    limit: Annotated[int | None, typer.Option(help="Judge at most N pending pairs.")] = None,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch; each batch is committed.")] = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Rationale length limit (cot).")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (cot).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top-p (cot).")] = 0.95,
    adaptive: Annotated[bool, typer.Option(help="cot: sample in rounds of 2 per order; stop once the vote is settled.")] = False,
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
    try:
        config = JudgeConfig(mode=mode, samples=samples or (4 if mode == "cot" else 1), seed=seed,
                             max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                             adaptive=adaptive, force_verdict=force_verdict)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with Store(db) as store:
        judge = pipeline.build_judge(backend, str(model) if model else None, config, batch_size)
        result = pipeline.annotate(
            store, files or [], judge, _fields(prompt_field, a_field, b_field, id_field, label_field),
            limit=limit, batch_size=batch_size, strict=strict, max_chars=max_chars,
            progress=lambda total: progress_bar(total, f"judging ({mode})", quiet=quiet),
        )
    if not quiet:
        if files:
            render.console.print(render.ingest_table(result.ingested))
            hint = render.quarantine_hint(result.ingested)
            if hint:
                render.console.print(f"[yellow]{hint}[/yellow]")
        render.console.print(render.annotate_summary(result))


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


from labeler.cli_review import review_app  # noqa: E402 - the sub-app imports the shared options above

app.add_typer(review_app, name="review")


def main() -> None:  # pragma: no cover
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
