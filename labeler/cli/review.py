"""`labeler review ...`: human review in Argilla. Parse options, call `labeler.review` (argilla, server), print."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from labeler.cli.options import DEFAULT_DB, Db, Quiet, open_store, require_db, usage_errors, user_errors
from labeler.cli.text import visible
from labeler.errors import LabelerError

review_app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,  # click's plain help: two columns that wrap whole words at 80 columns
    help="Send doubtful labels to people in Argilla and bring their answers back.\n\n"
    "Example: labeler review serve && labeler review push && labeler review pull",
)

SERVER = "Argilla server"
DEFAULT_DATASET = "labeler-review"
Url = Annotated[str | None, typer.Option(
    "--url", envvar="ARGILLA_API_URL", show_default=False, rich_help_panel=SERVER,
    help="Argilla server URL (env ARGILLA_API_URL; default: the one `labeler review serve` started).")]
ApiKey = Annotated[str | None, typer.Option(
    "--api-key", envvar="ARGILLA_API_KEY", show_default=False, rich_help_panel=SERVER,
    help="Argilla API key (env ARGILLA_API_KEY).")]
DatasetName = Annotated[str, typer.Option("--dataset", help="Argilla dataset holding the review records.")]
Workspace = Annotated[str, typer.Option("--workspace", help="Argilla workspace of the dataset.",
                                        rich_help_panel=SERVER)]
DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", show_default=False,
    help="Where the local server keeps its data (default: $LABELER_CACHE_DIR/argilla, ~/.cache/labeler/argilla).")]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _client(url: str | None, api_key: str | None):
    from labeler.review import argilla, server as review_server

    if url and not api_key:
        raise LabelerError(f"--url {url} needs an API key: pass --api-key or set ARGILLA_API_KEY")
    if api_key and not url:
        raise LabelerError("--api-key needs the server URL too: pass --url or set ARGILLA_API_URL")
    if not url:
        creds = review_server.local_credentials(review_server.default_data_dir())
        url, api_key = creds.url, creds.api_key
    return argilla.connect(url, api_key)


@review_app.command()
@user_errors
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the Argilla UI and API on 127.0.0.1.")] = 6900,
    data_dir: DataDir = None,
    timeout: Annotated[float, typer.Option(min=1.0, max=86400.0,
                                           help="Seconds to wait for the server to answer.")] = 180.0,
    quiet: Quiet = False,
):
    """Start a local Argilla server (own venv, noida-db, 127.0.0.1 only), or reuse the one running.

    Example: labeler review serve --port 6900
    """
    from labeler.review import server as review_server

    if not 0 < port < 65536:
        raise typer.BadParameter(f"--port must be within 1-65535, got {port}")
    data_dir = data_dir or review_server.default_data_dir()
    result = review_server.serve(port, data_dir, timeout, say=(lambda message: None) if quiet else _say)
    if quiet:
        return
    how = "already running, reused" if result.reused else f"started in {result.seconds:.1f} s"
    creds = result.credentials
    if result.reused and not result.url.endswith(f":{port}"):
        how += f" (it runs on {result.url}, not port {port}: `labeler review stop` first to move it)"
    print(f"Argilla is running at {visible(result.url)} ({visible(how)}).")
    print(f"Log in as {creds.username!r} with the password in {result.credentials_path} (field \"password\").")
    print(f"API key {creds.masked_key}; for scripts and the Argilla SDK: eval \"$(labeler review env"
          f"{'' if data_dir == review_server.default_data_dir() else f' --data-dir {data_dir}'})\"")
    print("Next: labeler review push, then answer in the browser, then labeler review pull. Stop: labeler review stop")


@review_app.command()
@user_errors
def stop(data_dir: DataDir = None, quiet: Quiet = False):
    """Stop the local Argilla server (its data is kept for the next `serve`).

    Example: labeler review stop
    """
    from labeler.review import server as review_server

    data_dir = data_dir or review_server.default_data_dir()
    stopped = review_server.stop(data_dir)
    if not quiet:
        print(f"stopped {', '.join(stopped)}" if stopped else f"no local Argilla server was running in {data_dir}")


@review_app.command()
@user_errors
def env(data_dir: DataDir = None, quiet: Quiet = False):
    """Print `export ARGILLA_API_URL=... ARGILLA_API_KEY=...` lines for the local server.

    Example: labeler review env > argilla.env   # or in a shell: eval "$(labeler review env)"
    """
    import shlex

    from labeler.review import server as review_server

    data_dir = data_dir or review_server.default_data_dir()
    creds = review_server.local_credentials(data_dir)
    if not quiet and not review_server.running_state(review_server.Paths(data_dir)):
        _say(f"warning: the local Argilla server in {data_dir} is not running (start it with `labeler review serve`)")
    print(f"export ARGILLA_API_URL={shlex.quote(creds.url)}")
    print(f"export ARGILLA_API_KEY={shlex.quote(creds.api_key)}")


@review_app.command()
@user_errors
def push(
    db: Db = DEFAULT_DB,
    dataset: DatasetName = DEFAULT_DATASET,
    threshold: Annotated[float, typer.Option(help="Route model labels with confidence below this.")] = 0.7,
    audit_rate: Annotated[float, typer.Option(help="Share of confident labels sent as a random audit.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the audit draw (fixed per pair).")] = 0,
    most_doubtful: Annotated[str | None, typer.Option(
        help="A review budget: route the N (e.g. 200) or the share (e.g. 10%) most doubtful labels, whatever "
        "their confidence, instead of those under --threshold.", show_default=False)] = None,
    suspects: Annotated[bool, typer.Option(
        "--suspects", help="Send the human labels `labeler audit` flagged for a second look (instead of model "
        "labels).")] = False,
    rankings: Annotated[bool, typer.Option(
        "--rankings", help="Send the prompts whose ranking (`labeler rank`) is in doubt, as orders to drag (instead "
        "of pairs), to DATASET-rankings-N (N responses). In doubt: the best two are within the judge's uncertainty; "
        "--most-doubtful and --audit-rate count prompts.")] = False,
    limit: Annotated[int | None, typer.Option(help="At most N pairs this run (sent as N records).")] = None,
    batch_size: Annotated[int, typer.Option(help="Records per request; each is recorded as sent.")] = 100,
    min_submitted: Annotated[int, typer.Option(help="Reviewers per record (new datasets only).")] = 1,
    workspace: Workspace = "reviewers",
    url: Url = None,
    api_key: ApiKey = None,
    quiet: Quiet = False,
):
    """Send pairs that need a person (low confidence, order-inconsistent, split votes, audit sample) to Argilla.

    Example: labeler review push --most-doubtful 200 --audit-rate 0.05
    """
    from labeler.progress import progress_bar
    from labeler.review import argilla
    from labeler.review.routing import RoutingRules

    if batch_size < 1 or min_submitted < 1 or (limit is not None and limit < 0):
        raise typer.BadParameter("--batch-size and --min-submitted must be >= 1, --limit >= 0")
    if rankings and suspects:
        raise typer.BadParameter("--rankings and --suspects send different records: choose one")
    with usage_errors():
        rules = RoutingRules(threshold=threshold, audit_rate=audit_rate, seed=seed, **_budget(most_doubtful))
    require_db(db, "run `labeler annotate` first")
    client = _client(url, api_key)
    if rankings:
        return _push_rankings(db, client, dataset, workspace, rules, limit, batch_size, min_submitted, quiet)
    with open_store(db) as store:
        result = argilla.push(store, client, dataset, workspace, rules, limit, batch_size, min_submitted,
                             progress=lambda total: progress_bar(total, "pushing", "records", quiet=quiet),
                             suspects=suspects)
    if not quiet:
        routed = ", ".join(f"{n} {reason}" for reason, n in sorted(result.newly_routed.items())) or "none"
        print(f"newly routed: {routed}")
        if result.requeued:
            print(f"dataset {dataset!r} was missing on the server: {result.requeued} unanswered records sent again")
        print(f"pushed {result.pushed} records to {dataset!r} ({result.left} routed records not sent yet)")
        print(f"review them at {visible(result.ui_url)}")


def _push_rankings(db: Path, client, dataset: str, workspace: str, rules, limit: int | None, batch_size: int,
                   min_submitted: int, quiet: bool) -> None:
    from labeler.progress import progress_bar
    from labeler.review import rank_argilla

    with open_store(db) as store:
        result = rank_argilla.push(store, client, dataset, workspace, rules, limit, batch_size, min_submitted,
                                   progress=lambda total: progress_bar(total, "pushing", "rankings", quiet=quiet))
    if quiet:
        return
    routed = ", ".join(f"{n} {reason}" for reason, n in sorted(result.newly_routed.items())) or "none"
    print(f"newly routed rankings: {routed}")
    if result.requeued:
        print(f"ranking datasets were missing on the server: {result.requeued} unanswered records sent again")
    sent = ", ".join(f"{n} to {name!r}" for name, n in result.datasets.items()) or "0 records"
    print(f"pushed {sent} ({result.left} routed rankings not sent yet)")
    for url in result.ui_urls.values():
        print(f"review them at {visible(url)}")


def _budget(text: str | None) -> dict:
    """--most-doubtful: `N` pairs or `P%` of them."""
    if text is None:
        return {}
    try:
        if text.strip().endswith("%"):
            return {"most_share": float(text.strip()[:-1]) / 100}
        return {"most": int(text)}
    except ValueError:
        raise typer.BadParameter(f"--most-doubtful takes a number of pairs (200) or a share (10%), not {text!r}")


@review_app.command()
@user_errors
def pull(
    db: Db = DEFAULT_DB,
    dataset: DatasetName = DEFAULT_DATASET,
    rankings: Annotated[bool, typer.Option(
        "--rankings", help="Pull the orders given to the rankings pushed with --rankings: each becomes a human "
        "label on every pair of the prompt's responses (equal ranks: tie).")] = False,
    workspace: Workspace = "reviewers",
    url: Url = None,
    api_key: ApiKey = None,
    quiet: Quiet = False,
):
    """Store reviewers' answers as human labels (they outrank model labels) and report judge agreement.

    Example: labeler review pull --dataset labeler-review
    """
    from labeler.review import argilla

    require_db(db)
    client = _client(url, api_key)
    if rankings:
        return _pull_rankings(db, client, dataset, workspace, quiet)
    with open_store(db) as store:
        result = argilla.pull(store, client, dataset, workspace)
    if quiet:
        return
    c, a = result.counts, result.agreement
    print(f"{c.records_seen} records, {c.submitted} submitted answers, {c.discarded} discarded")
    print(f"human labels: {c.new_labels} new, {c.changed_labels} changed, {c.withdrawn_labels} withdrawn")
    if c.unknown_pairs:
        print(f"{c.unknown_pairs} records name pairs this database does not have (ignored)")
    print(f"judge agreed with the reviewers on {_share(a.agreed, a.decided)}; "
          f"on the audit sample {_share(a.audit_agreed, a.audit_decided)}")


def _pull_rankings(db: Path, client, dataset: str, workspace: str, quiet: bool) -> None:
    from labeler.review import rank_argilla

    with open_store(db) as store:
        result = rank_argilla.pull(store, client, dataset, workspace)
    if quiet:
        return
    c = result.counts
    print(f"{c.records_seen} ranking records in {', '.join(map(repr, result.datasets))}: "
          f"{c.submitted} submitted orders, {c.discarded} discarded")
    print(f"human pair labels: {c.new_labels} new, {c.changed_labels} changed, {c.withdrawn_labels} withdrawn")
    if c.unknown_pairs:
        print(f"{c.unknown_pairs} records name prompts this database does not have (ignored)")
    print(f"the judge's best response was among the reviewer's best in {_share(c.top_agreed, c.top_decided)} "
          "of the orders")


def _share(agreed: int, total: int) -> str:
    return f"{agreed}/{total} ({agreed / total:.0%})" if total else "0/0 (no answers yet)"
