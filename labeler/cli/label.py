"""`labeler ingest`, `annotate`, `status`, `export`: parse options, call `labeler.api`, render."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.choices import ExportFormat, Mode
from labeler.cli.text import safe, visible
from labeler.errors import LabelerError
from labeler.cli.options import (DEFAULT_DB, Actors, AField, BaseUrl, BatchSize, BField, Concurrency, Db, Files,
                                 JudgeBackend, JudgeModel,
                                 IdField, Json, JudgeCriteria, JudgeDevice, JudgeDtype, JudgeTemplate, LabelField,
                                 MaxChars, NumCpus, NumCpusPerActor, NumGpusPerActor, PromptField, Quiet, RayAddress,
                                 MaxRequests, ServerApi, ServerTokenizer, Strict, Yes, api_errors, fields, open_store, ray_runner, server_options,
                                 user_errors)


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
    json: Json = False,
    quiet: Quiet = False,
):
    """Store pairs from files, `datasets` folders or cached Hub datasets; bad rows go to quarantine with file, line
    and field. The layout (ours, TRL explicit/implicit prompt, UltraFeedback) is detected and shown.

    Example: labeler ingest prefs.jsonl ./my_dataset:train --strict
    """
    from labeler import api
    from labeler.cli import render

    reports = api.ingest(db, files, fields=fields(prompt_field, a_field, b_field, id_field, label_field),
                         strict=strict, max_chars=max_chars)
    if json:
        render.print_json([render.ingest_json(r) for r in reports])
    elif not quiet:
        render.ingested(reports)


@user_errors
def annotate(
    files: Annotated[list[Path] | None, typer.Argument(help="Files to ingest first (optional).")] = None,
    db: Db = DEFAULT_DB,
    mode: Annotated[Mode | None, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote "
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
    server_api: ServerApi = None,
    max_requests: MaxRequests = None,
    yes: Yes = False,
    limit: Annotated[int | None, typer.Option(help="At most N pairs this run (the first pending ones).")] = None,
    batch_size: BatchSize = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Rationale length limit (cot).")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (cot).")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top-p (cot).")] = 0.95,
    adaptive: Annotated[bool, typer.Option(
        help="cot: sample in rounds of 2 per order; stop once the vote is settled or each order repeats itself.")] = False,
    force_verdict: Annotated[bool, typer.Option(help="cot: a sample without [[A]]/[[B]] gets its verdict from the "
                                                     "logits after an appended marker (else it abstains).")] = True,
    template: JudgeTemplate = None,
    criteria: JudgeCriteria = None,
    prompt_field: PromptField = "prompt",
    a_field: AField = "response_a",
    b_field: BField = "response_b",
    id_field: IdField = "id",
    label_field: LabelField = "label",
    strict: Strict = False,
    max_chars: MaxChars = 200_000,
    ray: RayAddress = None,
    actors: Actors = 2,
    num_cpus: NumCpus = None,
    num_cpus_per_actor: NumCpusPerActor = 1.0,
    num_gpus_per_actor: NumGpusPerActor = 0.0,
    json: Json = False,
    quiet: Quiet = False,
):
    """Ingest files, then label every pair that has no label from the current judge (both orders pooled).

    Example: labeler annotate examples/pairs.jsonl --judge base --mode cot --samples 4
    """
    from labeler import api
    from labeler.cli import render

    tables = not (quiet or json)

    def show(reports) -> None:  # before judging starts, so bad rows are seen at once
        if files and tables:
            render.ingested(reports)

    def resuming(note: str) -> None:
        if tables:
            render.console.print(safe(note))

    runner = ray_runner(ray, actors, num_cpus, num_cpus_per_actor, num_gpus_per_actor)
    with api_errors():
        result = api.annotate(db, files or [], model=model, judge=judge, backend=backend, mode=mode, samples=samples,
                              dtype=dtype, device=device,
                              backend_options=server_options(base_url, tokenizer, concurrency, server_api, max_requests, yes),
                              batch_size=batch_size,
                              limit=limit, relabel=relabel, seed=seed,
                              max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, adaptive=adaptive,
                              force_verdict=force_verdict, template=template, criteria=criteria,
                              fields=fields(prompt_field, a_field, b_field, id_field, label_field), strict=strict,
                              max_chars=max_chars, progress=not quiet, on_ingested=show, on_resume=resuming,
                              runner=runner)
    if result.stopped:
        print(f"labeler: {result.stopped}", file=sys.stderr)
    if json:
        render.print_json(render.annotate_json(result))
    elif not quiet:
        render.console.print(render.annotate_summary(result))
        if result.compared:
            render.console.print(f"relabel: {result.changed} of {result.compared} pairs changed label against the "
                                 "previous judge")


@user_errors
def status(db: Db = DEFAULT_DB, json: Json = False, quiet: Quiet = False):
    """Pairs by state, label balance, confidence histogram and recent runs.

    Example: labeler status --json
    """
    from labeler.cli import render

    with open_store(db, must_exist=True, hint="run `labeler ingest` or `labeler annotate` first",
                    read_only=True) as store:
        report = store.status()
    if json or not quiet:
        render.status(report, json)


@user_errors
def quarantine(
    db: Db = DEFAULT_DB,
    file: Annotated[Path | None, typer.Option("--file", help="Only the rows of this input file.")] = None,
    json: Json = False,
    quiet: Quiet = False,
):
    """The rows ingest set aside: file, line (Parquet: row), field, reason and the raw line.

    Example: labeler quarantine --file data.jsonl
    """
    from labeler.cli import render

    with open_store(db, must_exist=True, hint="run `labeler ingest` first", read_only=True) as store:
        rows = store.quarantine_rows(str(file.resolve()) if file else None)
    if json:
        print("[" + ",".join(r.model_dump_json() for r in rows) + "]")
    elif not quiet:
        render.console.print(render.quarantine_table(rows) if rows else "No quarantined rows.")


@user_errors
def export(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file (.jsonl, or .parquet).")] = None,
    db: Db = DEFAULT_DB,
    format: Annotated[ExportFormat | None, typer.Option("--format", help="Default: from the --out file name, "
                                                        ".parquet/.pq -> parquet, else jsonl.")] = None,
    dpo: Annotated[bool, typer.Option("--dpo", help="Write TRL prompt/chosen/rejected rows (DPOTrainer, "
                                      "RewardTrainer): conversational when the input was; ties left out.")] = False,
    hf: Annotated[Path | None, typer.Option("--hf", help="Also (or only) write a `datasets` folder here "
                                            "(save_to_disk; datasets.load_from_disk reads it).")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated columns to write (with --dpo: "
                                                "columns added to prompt/chosen/rejected).")] = None,
    min_confidence: Annotated[float | None, typer.Option(help="Drop model labels below this confidence.")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Only this judge's model labels (a version from "
                                              "`labeler judges list`, or a judge_id), with the human labels.")] = None,
    mixed: Annotated[bool, typer.Option("--mixed", help="Export model labels of several judges together.")] = False,
    rankings: Annotated[bool, typer.Option("--rankings", help="Write one row per prompt of `labeler rank`: its "
                                           "responses with score, rank and uncertainty, best first.")] = False,
    pairs: Annotated[str | None, typer.Option("--pairs", help="With --dpo: DPO pairs from the rankings of `labeler "
                                              "rank`: best-worst, best-rest, all or adjacent.")] = None,
    min_margin: Annotated[float | None, typer.Option("--min-margin", help="With --pairs or --rankings: leave out "
                                                     "pairs (rankings) whose score difference is smaller.")] = None,
    quiet: Quiet = False,
):
    """Write labels (human labels outrank model labels) with rationale, confidence, votes, provenance and the
    input's extra fields.

    Example: labeler export --out prefs.jsonl --dpo --min-confidence 0.7
    """
    from labeler import api

    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:  # also refuses nan
        raise typer.BadParameter(f"--min-confidence must be a number in [0, 1], got {min_confidence}")
    if out is None and hf is None:
        raise LabelerError("nothing to write: pass --out FILE and/or --hf DIR")
    names = [c.strip() for c in columns.split(",") if c.strip()] if columns is not None else None
    if names is not None and not names:
        raise typer.BadParameter("--columns needs at least one column name")
    with api_errors():
        n = api.export(db, out, format=format, dpo=dpo, hf=hf, columns=names, min_confidence=min_confidence,
                       judge=judge, mixed=mixed, on_warning=lambda line: print(line, file=sys.stderr),
                       rankings=rankings, pairs=pairs, min_margin=min_margin)
    if not quiet:
        print(f"wrote {n} rows to {visible(' and '.join(str(t) for t in (out, hf) if t is not None))}")
