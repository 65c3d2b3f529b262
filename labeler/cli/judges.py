"""`labeler retrain` and `labeler judges list/use`: parse options, call `labeler.api` / `trainer.versions`, render."""

import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.choices import Method
from labeler.cli.options import DEFAULT_DB, Db, Json, Quiet, api_errors, user_errors

judges_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # click's plain help: two columns that wrap whole words at 80 columns
    help="Trained judge versions: list them, choose the active one.\n\nExample: labeler judges list",
)

STAR = "STaR sampling"
TRAIN = "Training"
GATE = "Split and promotion gate"
JudgesDir = Annotated[Path | None, typer.Option(
    "--judges-dir", envvar="LABELER_JUDGES_DIR", show_default=False,
    help="Where judge versions are written (env LABELER_JUDGES_DIR; default: <db stem>.judges/ next to the db).")]


def _opt(help: str, panel: str | None = None, *names: str):
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False)


@user_errors
def retrain(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Labelled file(s) to ingest first, as --gold (so `--gold train/*.jsonl` takes every file).",
        show_default=False)] = None,
    gold: Annotated[list[Path] | None, typer.Option("--gold", help="Labelled file(s) to ingest first (repeatable).",
                                                    show_default=False)] = None,
    db: Db = DEFAULT_DB,
    method: Annotated[Method | None, typer.Option(
        help="star-*: STaR on sampled rationales; bt: a Bradley-Terry baseline; bt-probe: Bradley-Terry heads on the "
        "frozen base's features (minutes on a CPU). Default: bt-probe after a probe judge (the starter: its heads "
        "are kept and corrected), star-dpo after a generative one.", show_default=False)] = None,
    iterations: Annotated[int | None, _opt("STaR outer loop: sample, train, repeat with the new judge (default 1).")]
    = None,
    config: Annotated[Path | None, _opt("YAML with retrain:/star:/train: sections; flags override it.")] = None,
    model: Annotated[Path | None, _opt("Start from this model dir instead of the active judge.")] = None,
    judge: Annotated[str | None, _opt("Start from this judge instead of the active one: a version, `starter` (the "
                                      "shipped judge) or `base` (the untrained default model).", None, "--judge")]
    = None,
    judges_dir: JudgesDir = None,
    samples: Annotated[int | None, _opt("Rationales per order (default 4).", STAR, "--samples", "-k")] = None,
    temperature: Annotated[float | None, _opt("Sampling temperature (default 1.0).", STAR)] = None,
    top_p: Annotated[float | None, _opt("Nucleus top-p (default 0.95).", STAR)] = None,
    max_new_tokens: Annotated[int | None, _opt("Rationale length limit (default 256).", STAR)] = None,
    max_pairs_per_order: Annotated[int | None, _opt("DPO pairs / chains kept per pair and order (default 2).", STAR)]
    = None,
    rationalize: Annotated[bool | None, _opt("Rationalize orders with no correct chain (default on).", STAR,
                                             "--rationalize/--no-rationalize")] = None,
    heldout_fraction: Annotated[float | None, _opt("Share of new prompts held out (default 0.2).", GATE)] = None,
    split_seed: Annotated[int | None, _opt("Seed of the held-out split (default 0).", GATE)] = None,
    eval_samples: Annotated[int | None, _opt("Votes per order when evaluating a cot judge (default 4).", GATE)]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse on the held-out split.",
                                        rich_help_panel=GATE)] = False,
    limit: Annotated[int | None, _opt("At most N pairs this run (the gold pairs trained on).", GATE)] = None,
    suspects: Annotated[str | None, _opt("Human labels `labeler audit` flagged: keep (default), drop, flip or "
                                         "smooth them (bt-probe: target = the audit's P(human's choice)).", GATE)]
    = None,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.", rich_help_panel=TRAIN)]
    = False,
    learning_rate: Annotated[float | None, _opt("Peak learning rate (default: by method, LoRA vs full).", TRAIN)]
    = None,
    epochs: Annotated[float | None, _opt("Epochs (default 1).", TRAIN)] = None,
    max_steps: Annotated[int | None, _opt("Stop after N optimizer steps.", TRAIN)] = None,
    train_batch_size: Annotated[int | None, _opt("Rows per step (default 2; genrm-sft 16).", TRAIN)] = None,
    lora_r: Annotated[int | None, _opt("LoRA rank (default 16).", TRAIN)] = None,
    save_steps: Annotated[int | None, _opt("Checkpoint every N steps (default 25; genrm-sft 50).", TRAIN)] = None,
    max_length: Annotated[int | None, _opt("Token limit of prompt + completion (default 2048); longer rows are cut "
                                           "(star-*) or left out (genrm-sft, bt).", TRAIN)] = None,
    probe_layers: Annotated[int | None, _opt("bt-probe: read features after N blocks (default 8).", TRAIN)] = None,
    safety_sources: Annotated[str | None, _opt("bt-probe: comma-separated sources whose pairs train a separate "
                                               "safety reward, gated by prompt (default: none).", TRAIN)] = None,
    batch_size: Annotated[int | None, _opt("Pairs per judging batch (default 8).")] = None,
    device: Annotated[str | None, _opt("Where the run judges and trains: auto (CUDA when available; default), cpu, "
                                       "cuda or cuda:0. bf16 autocast on CUDA.", TRAIN)] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Quiet = False,
):
    """Train a new judge version on the human (gold) labels and promote it if it is at least as good on the
    held-out split. With the starter (or a probe version) active it keeps its heads and fits a correction on the
    reviewed pairs (bt-probe); after a generative judge, STaR-DPO.

    Example: labeler retrain --gold reviewed.jsonl --method star-dpo --samples 4 --iterations 1
    """
    from labeler import api
    from labeler.cli import render

    options = {
        "retrain": {"iterations": iterations, "heldout_fraction": heldout_fraction,
                    "split_seed": split_seed, "eval_samples": eval_samples, "force": force or None,
                    "limit": limit, "batch_size": batch_size, "eval_max_new_tokens": max_new_tokens,
                    "suspects": suspects},
        "star": {"samples": samples, "temperature": temperature, "top_p": top_p,
                 "max_new_tokens": max_new_tokens, "max_pairs_per_order": max_pairs_per_order,
                 "rationalize": rationalize},
        "train": {"full": full or None, "learning_rate": learning_rate, "num_train_epochs": epochs,
                  "max_steps": max_steps, "per_device_train_batch_size": train_batch_size, "lora_r": lora_r,
                  "save_steps": save_steps, "max_length": max_length, "device": device, "layers": probe_layers,
                  "safety_sources": safety_sources},
    }

    def log(message: str) -> None:
        if not quiet:
            print(f"retrain: {message}", file=sys.stderr)

    with api_errors():
        result = api.retrain(db, gold=[*(gold or []), *(files or [])], method=method, config=config, model=model,
                             judge=judge, judges_dir=judges_dir, options=options, progress=not quiet, log=log)
    if json:
        print(result.model_dump_json(indent=2))
    elif not quiet:
        render.console.print(render.retrain_table(result))


@judges_app.command("list")
@user_errors
def list_(db: Db = DEFAULT_DB, json: Json = False, quiet: Quiet = False):
    """Judge versions: method, parent, held-out agreement (and the parent's), active flag.

    Example: labeler judges list --json
    """
    from labeler import api
    from labeler.cli import render

    versions = api.judges(db)
    if json:
        print(jsonlib.dumps([v.model_dump(mode="json", exclude={"metrics"}) for v in versions], indent=2))
    elif quiet:
        return
    elif not versions:
        render.console.print("No judge versions yet: the untrained default model judges (run `labeler retrain`).")
    else:
        render.console.print(render.versions_table(versions))


@judges_app.command()
@user_errors
def use(version: Annotated[str, typer.Argument(help="Version name, or `default` for the default judge (the shipped "
                                                  "starter judge).")],
        db: Db = DEFAULT_DB, quiet: Quiet = False):
    """Make a judge version the active one (annotate uses it when --model is not given).

    Example: labeler judges use v002-star-dpo
    """
    from labeler import api

    record = api.use_judge(db, version)
    if not quiet:
        print(f"active judge: {record.version} ({record.method}, {record.mode})" if record
              else "active judge: the default judge (the starter judge where shipped)")
