"""The `labeler` command line: parse options, call a stage, render with rich. No SQL, no model code.

One module per command group: `label` (ingest, annotate, status, export), `evaluate` (eval, calibrate),
`review` (review ...), `judges` (retrain, judges ...); `options` holds what they share, `render` the tables.
Importing this package loads no torch, transformers, argilla or vllm: commands import what they need.
"""

import os

import typer

from labeler.cli import evaluate, judges, label, review

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Label prompt/response pairs with a generative reward model judge.\n\n"
    "Example: labeler annotate examples/pairs.jsonl && labeler status",
)
for command in (label.ingest, label.annotate, label.status, label.quarantine, label.export):
    app.command()(command)
app.command("eval")(evaluate.eval_)
app.command()(evaluate.calibrate)
app.command()(evaluate.audit)
app.add_typer(review.review_app, name="review")
app.command()(judges.retrain)
app.add_typer(judges.judges_app, name="judges")


def _version(value: bool) -> None:
    if value:
        from labeler import __version__

        print(f"labeler {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
    """Label prompt/response pairs with a generative reward model judge.

    Example: labeler annotate examples/pairs.jsonl && labeler status
    """


def main() -> None:  # pragma: no cover
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()
