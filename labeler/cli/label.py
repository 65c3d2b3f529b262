"""`labeler ingest`, `annotate`, `status`, `export`: parse options, call `labeler.ingest` / `labeler.pipeline`, render."""

from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.options import (DEFAULT_DB, AField, BaseUrl, BatchSize, BField, Concurrency, Db, Files, IdField, Json,
                                 JudgeBackend, JudgeDevice, JudgeDtype, JudgeModel, LabelField, MaxChars, PromptField,
                                 Quiet, ServerTokenizer, Strict, fields, open_store, require_db, server_options,
                                 usage_errors, user_errors)


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
    from labeler.cli import render
    from labeler.ingest import ingest_files

    with open_store(db) as store:
        reports = ingest_files(store, files, fields(prompt_field, a_field, b_field, id_field, label_field),
                               strict, max_chars)
    if not quiet:
        render.ingested(reports)


@user_errors
def annotate(
    files: Annotated[list[Path] | None, typer.Argument(help="Files to ingest first (optional).")] = None,
    db: Db = DEFAULT_DB,
    mode: Annotated[str | None, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote "
                                             "(default: the judge version's mode, else direct).")] = None,
    samples: Annotated[int | None, typer.Option("--samples", "-k", help="Votes per order (cot; default 4).")] = None,
    model: JudgeModel = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Judge version (see `labeler judges list`).")] = None,
    relabel: Annotated[bool, typer.Option("--relabel", help="Re-judge every pair without a human label with the "
                                          "active judge; older labels are kept for comparison.")] = False,
    backend: JudgeBackend = "transformers",
    dtype: JudgeDtype = None,
    device: JudgeDevice = "auto",
    base_url: BaseUrl = None,
    tokenizer: ServerTokenizer = None,
    concurrency: Concurrency = 8,
    limit: Annotated[int | None, typer.Option(help="Judge at most N pending pairs.")] = None,
    batch_size: BatchSize = 8,
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
    from labeler import pipeline
    from labeler.cli import render
    from labeler.ingest import ingest_files
    from labeler.progress import progress_bar

    if batch_size < 1 or (limit is not None and limit < 0):
        raise typer.BadParameter("--batch-size must be >= 1 and --limit >= 0")
    with open_store(db) as store:
        with usage_errors():
            judge_ = pipeline.judge_for(store, backend, model, judge, mode, samples, batch_size, relabel, dtype, device,
                                        server_options(base_url, tokenizer, concurrency), seed=seed,
                                        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                        adaptive=adaptive, force_verdict=force_verdict)
        ingested = ingest_files(store, files or [], fields(prompt_field, a_field, b_field, id_field, label_field),
                                strict, max_chars)
        if files and not quiet:  # before judging starts, so bad rows are seen at once
            render.ingested(ingested)
        result = pipeline.annotate(
            store, [], judge_, limit=limit, batch_size=batch_size, skip_human=relabel,
            command="relabel" if relabel else "annotate",
            progress=lambda total: progress_bar(total, f"judging ({judge_.config.mode})", quiet=quiet),
        )
        result.ingested = ingested
        compared, changed = pipeline.label_changes(store, result) if relabel else (0, 0)
    if not quiet:
        render.console.print(render.annotate_summary(result))
        if compared:
            render.console.print(f"relabel: {changed} of {compared} pairs changed label against the previous judge")


@user_errors
def status(db: Db = DEFAULT_DB, json: Json = False):
    """Pairs by state, label balance, confidence histogram and recent runs.

    Example: labeler status --json
    """
    from labeler.cli import render

    with open_store(db, must_exist=True, hint="run `labeler ingest` or `labeler annotate` first") as store:
        render.status(store.status(), json)


@user_errors
def quarantine(
    db: Db = DEFAULT_DB,
    file: Annotated[Path | None, typer.Option("--file", help="Only the rows of this input file.")] = None,
    json: Json = False,
):
    """The rows ingest set aside: file, line (Parquet: row), field, reason and the raw line.

    Example: labeler quarantine --file data.jsonl
    """
    from labeler.cli import render

    with open_store(db, must_exist=True, hint="run `labeler ingest` first") as store:
        rows = store.quarantine_rows(str(file.resolve()) if file else None)
    if json:
        print("[" + ",".join(r.model_dump_json() for r in rows) + "]")
    else:
        render.console.print(render.quarantine_table(rows) if rows else "No quarantined rows.")


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
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:  # also refuses nan
        raise typer.BadParameter(f"--min-confidence must be a number in [0, 1], got {min_confidence}")
    require_db(db)
    n = pipeline.export(db, out, format, dpo, min_confidence)
    if not quiet:
        print(f"wrote {n} rows to {out}")
