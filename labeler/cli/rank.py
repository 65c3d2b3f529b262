"""`labeler rank`: parse options, call `labeler.api.rank`, render."""

from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.options import (DEFAULT_DB, JUDGE, BaseUrl, BatchSize, Concurrency, Db, JudgeBackend, JudgeCriteria,
                                 JudgeDevice, JudgeDtype, JudgeMode, JudgeModel, JudgeSamples, JudgeTemplate,
                                 JudgeVersion, MaxChars, PromptField, Quiet, ServerTokenizer, Strict, api_errors,
                                 fields, server_options, user_errors)


@user_errors
def rank(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Rows with N responses per prompt to ingest first: prompt + responses: [...], UltraFeedback or TRL "
             "prompt + completions (ratings, when present, are human gold).", show_default=False)] = None,
    db: Db = DEFAULT_DB,
    budget: Annotated[int | None, typer.Option(
        min=1, help="Pairwise judges: at most N pairs compared per prompt, each in both orders (default: all pairs "
                    "up to 4 responses, else responses - 1 + log2(responses)).")] = None,
    mode: JudgeMode = None,
    samples: JudgeSamples = None,
    model: JudgeModel = None,
    judge: JudgeVersion = None,
    backend: JudgeBackend = "transformers",
    dtype: JudgeDtype = None,
    device: JudgeDevice = "auto",
    base_url: BaseUrl = None,
    tokenizer: ServerTokenizer = None,
    concurrency: Concurrency = 8,
    seed: Annotated[int, typer.Option(help="Sampling seed.", rich_help_panel=JUDGE)] = 0,
    template: JudgeTemplate = None,
    criteria: JudgeCriteria = None,
    limit: Annotated[int | None, typer.Option(help="At most N groups this run (a group: one prompt's responses).")] = None,
    batch_size: BatchSize = 8,
    prompt_field: PromptField = "prompt",
    strict: Strict = False,
    max_chars: MaxChars = 200_000,
    quiet: Quiet = False,
):
    """Rank each prompt's N responses: a reward judge (the starter, bt and bt-probe versions) scores each response
    once; a pairwise judge compares a sparse design of pairs, both orders, and fits Bradley-Terry scores with
    intervals. The pairs are stored as ordinary pairs, so a killed run resumes. Then `labeler export --rankings`
    or `labeler export --dpo --pairs best-worst`.

    Example: labeler rank samples.jsonl --judge base --budget 10
    """
    from labeler import api
    from labeler.cli import render

    with api_errors():
        result = api.rank(db, files or [], model=model, judge=judge, backend=backend, mode=mode, samples=samples,
                          dtype=dtype, device=device, backend_options=server_options(base_url, tokenizer, concurrency),
                          batch_size=batch_size, budget=budget, limit=limit, seed=seed, template=template,
                          criteria=criteria, fields=fields(prompt_field, "response_a", "response_b", "id", "label"),
                          strict=strict, max_chars=max_chars, progress=not quiet)
    if not quiet:
        if files:
            render.ingested(result.ingested)
        render.console.print(render.rank_summary(result))
