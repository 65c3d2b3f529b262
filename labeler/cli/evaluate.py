"""`labeler eval` and `labeler calibrate`: parse options, call `labeler.api` / `labeler.evaluation`, render."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.options import (DEFAULT_DB, JUDGE, Actors, BaseUrl, BatchSize, Concurrency, Db, JudgeBackend,
                                 JudgeCriteria, JudgeDevice, JudgeDtype, JudgeMode, JudgeModel, JudgeSamples,
                                 JudgeTemplate, JudgeVersion, Json, MaxRequests, NumCpus, NumCpusPerActor,
                                 NumGpusPerActor, Quiet, RayAddress, ServerApi, ServerTokenizer, Yes, api_errors,
                                 ray_runner, require_db, server_options,
                                 usage_errors, user_errors)


@user_errors
def eval_(
    files: Annotated[list[Path], typer.Argument(
        help="Human-labelled pairs as ingest reads them: label A/B, or chosen/rejected, or rated completions.",
        show_default=False)],
    db: Db = DEFAULT_DB,
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
    server_api: ServerApi = None,
    max_requests: MaxRequests = None,
    yes: Yes = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.", rich_help_panel=JUDGE)] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="Rationale length limit (cot).", rich_help_panel=JUDGE)] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (cot).", rich_help_panel=JUDGE)] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling top-p (cot).", rich_help_panel=JUDGE)] = 0.95,
    adaptive: Annotated[bool, typer.Option(
        help="cot: sample in rounds of 2 per order; stop once the vote is settled or each order repeats itself.",
        rich_help_panel=JUDGE)] = False,
    force_verdict: Annotated[bool, typer.Option(help="cot: a sample without [[A]]/[[B]] gets its verdict from the "
                                                     "logits after an appended marker.", rich_help_panel=JUDGE)] = True,
    template: JudgeTemplate = None,
    criteria: JudgeCriteria = None,
    per_file: Annotated[int | None, typer.Option("--per-file", min=0, help="Use the first N human-labelled pairs of "
                                                 "each file.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", hidden=True, help="The old name of --per-file.")] = None,
    batch_size: BatchSize = 8,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write metrics.json, PNG plots and report.md here.")] = None,
    coverage: Annotated[float, typer.Option(help="Report the confidence threshold that keeps this share of labels.")] = 0.8,
    bins: Annotated[int, typer.Option(help="Equal-width confidence bins over [0.5, 1] (ECE, reliability).")] = 10,
    ray: RayAddress = None,
    actors: Actors = 2,
    num_cpus: NumCpus = None,
    num_cpus_per_actor: NumCpusPerActor = 1.0,
    num_gpus_per_actor: NumGpusPerActor = 0.0,
    rank: Annotated[bool, typer.Option("--rank", help="Rank each prompt's responses (as `labeler rank`) and compare "
                                       "with the human ratings or votes: pairwise agreement, Kendall's tau per "
                                       "prompt, top-1. Pairs sharing a prompt are ranked together.")] = False,
    json: Json = False,
    quiet: Quiet = False,
):
    """Judge human-labelled pairs (stored labels of the same judge are reused) and report agreement, position
    bias, maj@k, calibration (ECE before/after temperature scaling), coverage and confusion.

    Example: labeler eval ../shared/data/prefs/llmbar.jsonl --per-file 50 --out eval-llmbar
    """
    from labeler import api
    from labeler.cli import render

    if limit is not None:  # --limit is "at most N pairs in all" elsewhere; eval's counts per file
        print("note: eval's --limit is now --per-file (the first N pairs of each file)", file=sys.stderr)
        per_file = limit if per_file is None else per_file
    if rank:
        _eval_rankings(files, db, mode, samples, model, judge, backend, dtype, device,
                       server_options(base_url, tokenizer, concurrency), batch_size, per_file, seed, out, quiet, json)
        return
    runner = ray_runner(ray, actors, num_cpus, num_cpus_per_actor, num_gpus_per_actor)
    with api_errors():
        result = api.evaluate(db, files, model=model, judge=judge, backend=backend, mode=mode, samples=samples,
                              dtype=dtype, device=device,
                              backend_options=server_options(base_url, tokenizer, concurrency, server_api,
                                                             max_requests, yes),
                              batch_size=batch_size, limit=per_file, seed=seed, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_p=top_p, adaptive=adaptive, force_verdict=force_verdict,
                              template=template, criteria=criteria, out=out, coverage=coverage, bins=bins,
                              progress=not quiet, runner=runner)
    if json:
        render.print_json(render.eval_json(result))
    elif not quiet:
        render.evaluated(result, out)


def _eval_rankings(files, db, mode, samples, model, judge, backend, dtype, device, backend_options, batch_size, limit,
                   seed, out, quiet, json) -> None:
    from labeler import api
    from labeler.cli import render
    from labeler.paths import atomic_write

    with api_errors():
        found, _ = api.evaluate_rankings(db, files, model=model, judge=judge, backend=backend, mode=mode,
                                         samples=samples, dtype=dtype, device=device, backend_options=backend_options,
                                         batch_size=batch_size, limit=limit, seed=seed, progress=not quiet and not json)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "rank_metrics.json", found.model_dump_json(indent=2))
    if json:
        print(found.model_dump_json(indent=2))
    elif not quiet:
        render.console.print(render.rank_eval_table(found))


@user_errors
def calibrate(
    db: Db = DEFAULT_DB,
    mode: JudgeMode = None,
    samples: JudgeSamples = None,
    model: JudgeModel = None,
    judge: JudgeVersion = None,
    backend: JudgeBackend = "transformers",
    base_url: BaseUrl = None,
    tokenizer: ServerTokenizer = None,
    server_api: ServerApi = None,
    min_pairs: Annotated[int, typer.Option(help="Refuse to fit on fewer human-labelled pairs.")] = 20,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the judge's calibration instead.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Store a fit that hit the bound of its search.")] = False,
    quiet: Quiet = False,
):
    """Fit a temperature to the judge's confidence on every human-labelled pair it judged and store it: status,
    export and review routing then read calibrated confidence (labels never change).

    Example: labeler calibrate --judge base --mode cot --samples 4
    """
    from labeler import api
    from labeler.cli import render

    judge_options = dict(judge=judge, model=model, backend=backend, mode=mode, samples=samples,
                         backend_options=server_options(base_url, tokenizer, 1, server_api))
    if min_pairs < 1:
        raise typer.BadParameter("--min-pairs must be >= 1")
    require_db(db, "run `labeler eval` or `labeler review pull` first: calibration needs human labels")
    with api_errors():
        if clear:
            removed = api.clear_calibration(db, **judge_options)
            if not quiet:
                print(f"removed {removed} calibration(s)")
            return
        record = api.calibrate(db, **judge_options, min_pairs=min_pairs, force=force)
    if not quiet:
        render.console.print(render.calibration_summary(record))


@user_errors
def audit(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Human-labelled files to ingest first (the audit covers every human label in the store).",
        show_default=False)] = None,
    db: Db = DEFAULT_DB,
    judge: Annotated[str | None, typer.Option("--judge", help="The probe judge whose heads are cross-fitted: a "
                                              "version or `starter` (default: the active judge).",
                                              show_default=False)] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Fit new heads instead (for pairs the judge "
                                               "was trained on).")] = False,
    probe_layers: Annotated[int, typer.Option(help="--from-scratch: read features after N blocks.")] = 8,
    folds: Annotated[int, typer.Option(help="Folds by prompt: no head scores a pair it was trained on.")] = 5,
    confidence: Annotated[float, typer.Option(help="Flag a label when the heads give the other response this "
                                              "much (calibrated).")] = 0.7,
    show: Annotated[int, typer.Option(help="List this many suspects, most confident first.")] = 20,
    json: Annotated[bool, typer.Option("--json", help="Print the whole report (every pair) as JSON.")] = False,
    quiet: Quiet = False,
):
    """Find human labels the judge confidently contradicts: each pair is scored by heads fitted without its fold;
    `review push --suspects` sends the flagged ones for a second look, `retrain --suspects` drops or flips them.

    Example: labeler audit reviewed.jsonl --confidence 0.8
    """
    from labeler import api
    from labeler.cli import render

    with usage_errors(), api_errors():
        report = api.audit(db, files or [], judge=judge, scratch=from_scratch, folds=folds, confidence=confidence,
                           progress=not quiet and not json, layers=probe_layers)
    if json:
        print(report.model_dump_json(indent=2))
    elif not quiet:
        for part in render.audit_tables(report, show):
            render.console.print(part)
