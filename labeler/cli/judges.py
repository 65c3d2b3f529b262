"""`labeler retrain` and `labeler judges list/use`. Thin: parse options, call `trainer`, render.

Import `labeler.cli` (not this module) first: it registers these commands and owns the shared options.
"""

import json as jsonlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.cli import DEFAULT_DB, Db, Quiet, user_errors
from labeler.errors import LabelerError

judges_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
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
    gold: Annotated[list[Path] | None, typer.Option("--gold", help="Labelled file(s) to ingest first (repeatable).",
                                                    show_default=False)] = None,
    db: Db = DEFAULT_DB,
    method: Annotated[str, typer.Option(help="star-dpo, star-sft, genrm-sft or bt (Bradley-Terry baseline).")]
    = "star-dpo",
    iterations: Annotated[int | None, _opt("STaR outer loop: sample, train, repeat with the new judge (default 1).")]
    = None,
    config: Annotated[Path | None, _opt("YAML with retrain:/star:/train: sections; flags override it.")] = None,
    model: Annotated[Path | None, _opt("Start from this model dir instead of the active judge.")] = None,
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
    limit: Annotated[int | None, _opt("Train on at most N gold pairs.", GATE)] = None,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.", rich_help_panel=TRAIN)]
    = False,
    learning_rate: Annotated[float | None, _opt("Peak learning rate (default: by method, LoRA vs full).", TRAIN)]
    = None,
    epochs: Annotated[float | None, _opt("Epochs (default 1).", TRAIN)] = None,
    max_steps: Annotated[int | None, _opt("Stop after N optimizer steps.", TRAIN)] = None,
    train_batch_size: Annotated[int | None, _opt("Rows per step (default 2).", TRAIN)] = None,
    lora_r: Annotated[int | None, _opt("LoRA rank (default 16).", TRAIN)] = None,
    save_steps: Annotated[int | None, _opt("Checkpoint every N steps (default 25).", TRAIN)] = None,
    max_length: Annotated[int | None, _opt("Token limit of prompt + completion (default 2048).", TRAIN)] = None,
    batch_size: Annotated[int | None, _opt("Pairs per judging batch (default 8).")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Quiet = False,
):
    """Train a new judge version on the human (gold) labels and promote it if it is at least as good on the
    held-out split: STaR-DPO by default (sample rationales, prefer the ones that reach the gold verdict).

    Example: labeler retrain --gold reviewed.jsonl --method star-dpo --samples 4 --iterations 1
    """
    from labeler import render
    from labeler.progress import progress_bar
    from labeler.store import Store
    from trainer.config import build_configs, load_yaml
    from trainer.retrain import RetrainPlan, retrain as run
    from trainer.versions import judges_dir as default_judges_dir

    try:
        sections = load_yaml(config) if config else {}
        flags = {
            "retrain": {"method": method, "iterations": iterations, "heldout_fraction": heldout_fraction,
                        "split_seed": split_seed, "eval_samples": eval_samples, "force": force or None,
                        "limit": limit, "batch_size": batch_size, "eval_max_new_tokens": max_new_tokens},
            "star": {"samples": samples, "temperature": temperature, "top_p": top_p,
                     "max_new_tokens": max_new_tokens, "max_pairs_per_order": max_pairs_per_order,
                     "rationalize": rationalize},
            "train": {"full": full or None, "learning_rate": learning_rate, "num_train_epochs": epochs,
                      "max_steps": max_steps, "per_device_train_batch_size": train_batch_size, "lora_r": lora_r,
                      "save_steps": save_steps, "max_length": max_length},
        }
        merged = {name: {**sections.get(name, {}), **{k: v for k, v in flags[name].items() if v is not None}}
                  for name in ("retrain", "star", "train")}
        retrain_cfg, star_cfg, train_cfg = build_configs(merged)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None
    for path in gold or []:
        if not path.exists():
            raise LabelerError(f"{path}: no such file")
    plan = RetrainPlan(retrain_cfg, star_cfg, train_cfg, default_judges_dir(db, judges_dir), model, gold or [],
                       quiet)

    def log(message: str) -> None:
        if not quiet:
            print(f"retrain: {message}", file=sys.stderr)

    with Store(db) as store:
        result = run(store, plan, lambda total, what: progress_bar(total, what, quiet=quiet), log)
    if json:
        print(result.model_dump_json(indent=2))
    elif not quiet:
        render.console.print(_result_table(result))


def _result_table(result):
    from rich.table import Table

    verdict = "promoted (active)" if result.promoted and not result.forced else \
        "promoted with --force (worse on held-out)" if result.forced else "not promoted: worse on held-out"
    table = Table(title=f"{result.version}: {verdict}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("held-out agreement (new / previous)",
                  f"{result.heldout_agreement:.3f} / {result.parent_agreement:.3f} (n={result.heldout_n})")
    table.add_row("trained from", result.parent or result.start_judge_id)
    table.add_row("gold pairs / training rows", f"{result.train_pairs} / {result.train_rows}")
    table.add_row("resumed", "yes" if result.resumed else "no")
    table.add_row("time", f"{result.seconds:.1f} s")
    table.add_row("path", result.path)
    return table


@judges_app.command("list")
@user_errors
def list_(db: Db = DEFAULT_DB, json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """Judge versions: method, parent, held-out agreement (and the parent's), active flag.

    Example: labeler judges list --json
    """
    from rich.table import Table

    from labeler import render
    from labeler.store import Store
    from trainer.versions import list_versions

    if not db.exists():
        raise LabelerError(f"{db}: no such database")
    with Store(db) as store:
        versions = list_versions(store)
    if json:
        print(jsonlib.dumps([v.model_dump(mode="json", exclude={"metrics"}) for v in versions], indent=2))
        return
    if not versions:
        render.console.print("No judge versions yet: the default model judges (run `labeler retrain`).")
        return
    table = Table(title="Judge versions (held-out agreement: this version / the judge it had to beat)")
    for col in ("version", "status", "held-out", "trained from", "mode"):
        table.add_column(col, overflow="fold")
    for v in versions:
        agree = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
        status = "[bold green]active[/bold green]" if v.active else ("promoted" if v.promoted else "rejected")
        table.add_row(v.version, status, f"{agree(v.heldout_agreement)} / {agree(v.parent_agreement)} "
                      f"(n={v.heldout_n})", v.parent or v.start_judge_id, f"{v.mode} ({v.weights})")
    render.console.print(table)


@judges_app.command()
@user_errors
def use(version: Annotated[str, typer.Argument(help="Version name, or `default` for the default model.")],
        db: Db = DEFAULT_DB):
    """Make a judge version the active one (annotate uses it when --model is not given).

    Example: labeler judges use v002-star-dpo
    """
    from labeler.store import Store
    from trainer.versions import use as activate

    if not db.exists():
        raise LabelerError(f"{db}: no such database")
    with Store(db) as store:
        record = activate(store, version)
    print(f"active judge: {record.version} ({record.method}, {record.mode})" if record
          else "active judge: the default model")
