"""What every command group shares: option types, the `Error: ...` wrapper and opening the store."""

import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from labeler.cli.choices import Backend, Dtype, Mode
from labeler.cli.text import visible
from labeler.errors import LabelerError, command_line

if TYPE_CHECKING:
    from labeler.store import Store

DEFAULT_DB = Path("labeler.duckdb")
Db = Annotated[Path, typer.Option("--db", envvar="LABELER_DB", help="DuckDB file (env LABELER_DB).")]
Files = Annotated[list[Path], typer.Argument(
    help="Files (JSONL, JSON, Parquet, CSV), `datasets` save_to_disk folders or cached Hub dataset ids (NAME:SPLIT "
         "for one split); layout detected: prompt/response_a/response_b, TRL prompt/chosen/rejected, chosen/rejected "
         "transcripts, UltraFeedback completions.", show_default=False)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, tables or notes; errors and warnings only "
                                     "(--json still prints).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")]
Strict = Annotated[bool, typer.Option("--strict", help="Fail on the first bad row instead of quarantining it.")]
MaxChars = Annotated[int, typer.Option("--max-chars", min=1, help="Longest text field accepted, in characters.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Pairs per batch; each batch is committed.")]

FIELDS = "Input fields"
PromptField = Annotated[str, typer.Option("--prompt-field", help="Field holding the prompt.", rich_help_panel=FIELDS)]
AField = Annotated[str, typer.Option("--a-field", help="Field holding response A.", rich_help_panel=FIELDS)]
BField = Annotated[str, typer.Option("--b-field", help="Field holding response B.", rich_help_panel=FIELDS)]
IdField = Annotated[str, typer.Option("--id-field", help="Field holding the pair id.", rich_help_panel=FIELDS)]
LabelField = Annotated[str, typer.Option("--label-field", help="Field holding a human label (A, B or tie).",
                                         rich_help_panel=FIELDS)]

JUDGE = "Judge (resolved as in annotate)"
JudgeMode = Annotated[Mode | None, typer.Option(help="direct: verdict-token logits; cot: sampled rationales + vote "
                                               "(default: the judge version's mode, else direct).", rich_help_panel=JUDGE)]
JudgeSamples = Annotated[int | None, typer.Option("--samples", "-k", help="Votes per order (cot; default 4).",
                                                  rich_help_panel=JUDGE)]
JudgeModel = Annotated[Path | None, typer.Option(help="Local Hugging Face model dir or a Hub id in the local HF cache "
                                                 "(--backend openai: the server's model name; default: the active judge "
                                                 "version, else SmolLM2-135M-Instruct).", rich_help_panel=JUDGE)]
JudgeVersion = Annotated[str | None, typer.Option("--judge", help="Judge version (see `labeler judges list`).",
                                                  rich_help_panel=JUDGE)]
JudgeBackend = Annotated[Backend, typer.Option(help="openai: an OpenAI-compatible server; vllm: the GPU extra; reward: "
                                               "Bradley-Terry judges; fake: tests.", rich_help_panel=JUDGE)]
JudgeTemplate = Annotated[Path | None, typer.Option(
    "--template", help="Jinja judge template with the blocks system, user, assistant_prefix (as "
    "labeler/judge/templates/*.jinja); a new template labels every pair again.", rich_help_panel=JUDGE)]
JudgeCriteria = Annotated[str | None, typer.Option(
    "--criteria", help="What the judge should prefer, in place of 'more helpful, correct, honest, harmless, ...' "
    "(a custom --template must use {{ criteria }}); new criteria label every pair again.", rich_help_panel=JUDGE)]
JudgeDtype = Annotated[Dtype | None, typer.Option(help="Weights of the transformers backend; default "
                                                "float32 on the CPU, bfloat16 on CUDA; verdict logits stay float32. "
                                                "Another dtype labels every pair again.", show_default=False,
                                                rich_help_panel=JUDGE)]
JudgeDevice = Annotated[str, typer.Option(help="Where the transformers backend runs: auto (CUDA when available), cpu, "
                                          "cuda or cuda:N. Labels made on a GPU are kept apart from CPU ones.",
                                          rich_help_panel=JUDGE)]

SERVER = "OpenAI-compatible server (--backend openai)"
BaseUrl = Annotated[str | None, typer.Option(
    "--base-url", envvar="LABELER_BASE_URL", show_default=False, rich_help_panel=SERVER,
    help="The server's API root, e.g. http://127.0.0.1:8000/v1 (env LABELER_BASE_URL). The key comes from "
         "LABELER_API_KEY or OPENAI_API_KEY.")]
ServerTokenizer = Annotated[str | None, typer.Option(
    "--tokenizer", show_default=False, rich_help_panel=SERVER,
    help="Tokenizer (local dir or cached Hub id) whose chat template renders the judge prompt (default: --model when "
         "it resolves locally, else the default model's).")]
Concurrency = Annotated[int, typer.Option(help="Requests in flight at once.", rich_help_panel=SERVER)]
ServerApi = Annotated[str | None, typer.Option(
    "--api", show_default=False, rich_help_panel=SERVER,
    help="chat: POST /chat/completions, the server applies its chat template (default without --tokenizer); "
         "completions: the prompt rendered here with --tokenizer's chat template (default with one). Part of the "
         "judge id.")]
MaxRequests = Annotated[int | None, typer.Option(
    "--max-requests", min=1, show_default=False, rich_help_panel=SERVER,
    help="Send at most N requests, then stop cleanly; a rerun resumes.")]
Yes = Annotated[bool, typer.Option(
    "--yes", "-y", rich_help_panel=SERVER,
    help="Send requests to a non-local address without asking (the estimate of requests and tokens is otherwise "
         "shown for confirmation on a terminal).")]


def server_options(base_url: str | None, tokenizer: str | None, concurrency: int, api: str | None = None,
                   max_requests: int | None = None, yes: bool = True) -> dict:
    """The openai backend's options (other backends ignore them)."""
    return {"base_url": base_url, "tokenizer": tokenizer, "concurrency": concurrency, "api": api,
            "max_requests": max_requests, "confirm": None if yes or not base_url else confirm_cost}


def confirm_cost(estimate) -> bool:
    """Show what a run against a non-local address will send and ask on the terminal; without one, refuse."""
    if not sys.stdin.isatty():
        raise LabelerError(f"would send to {estimate}; pass --yes to send them (no terminal to confirm on)")
    print(f"labeler will send to {estimate}.", file=sys.stderr)
    return typer.confirm("Send them?", err=True)

RAY = "Ray (judging on many machines; needs the ray extra)"
RayAddress = Annotated[str | None, typer.Option(
    "--ray", help="Judge on a Ray cluster: local (start Ray on this machine), auto (the cluster `ray start` runs "
    "here) or HOST:PORT. This process still writes every batch to the store.", rich_help_panel=RAY,
    show_default=False)]
Actors = Annotated[int, typer.Option("--actors", help="Judges at once, one per Ray actor.", rich_help_panel=RAY)]
NumCpus = Annotated[int | None, typer.Option("--num-cpus", help="CPUs the Ray of --ray local may use (default: all).",
                                             rich_help_panel=RAY)]
NumCpusPerActor = Annotated[float, typer.Option("--num-cpus-per-actor", help="CPUs each actor reserves.",
                                                rich_help_panel=RAY)]
NumGpusPerActor = Annotated[float, typer.Option("--num-gpus-per-actor", help="GPUs each actor reserves (GPU clusters).",
                                                rich_help_panel=RAY)]


def ray_runner(address: str | None, actors: int, num_cpus: int | None, num_cpus_per_actor: float,
               num_gpus_per_actor: float):
    """The `--ray` options as a runner for `pipeline.annotate` (None without --ray); bad values are usage errors."""
    if address is None:
        return None
    from labeler.scale import RayOptions, RayRunner

    with usage_errors():
        return RayRunner(RayOptions(address, actors, num_cpus, num_cpus_per_actor, num_gpus_per_actor))


def user_errors(fn):
    """Known failures print one `Error: ...` line on stderr and exit 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with command_line():
                result = fn(*args, **kwargs)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return result
        except BrokenPipeError:  # `labeler status --json | head`: the reader has all it wants
            _silence_stdout()
            raise typer.Exit(141) from None  # 128 + SIGPIPE, what a shell reports for such a writer
        except LabelerError as exc:
            message = str(exc)
        except OSError as exc:  # a full disk, a permission: what and where, not a traceback
            message = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc)
        except Exception as exc:
            duckdb = sys.modules.get("duckdb")
            if duckdb is None or not isinstance(exc, duckdb.Error):
                raise  # typer.Exit, and bugs, go on
            message = f"database error: {' '.join(str(exc).split())}"
        print(f"Error: {visible(message)}", file=sys.stderr)
        raise typer.Exit(1) from None

    return wrapper


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of the closed pipe stays quiet."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (a test runner's buffer)
        pass


def require_db(db: Path, hint: str = "") -> None:
    """A command that reads results refuses a database that is not there (instead of creating an empty one)."""
    if not db.exists():
        raise LabelerError(f"{db}: no such database{f' ({hint})' if hint else ''}")


@contextmanager
def open_store(db: Path, must_exist: bool = False, hint: str = "", read_only: bool = False) -> Iterator["Store"]:
    """The store a command works on (created on first use unless `must_exist`), closed when the command ends;
    `read_only` for commands that only read it."""
    from labeler.store import Store

    if must_exist:
        require_db(db, hint)
    with Store(db, create=not must_exist, read_only=read_only) as store:
        yield store


def fields(prompt_field: str, a_field: str, b_field: str, id_field: str, label_field: str):
    """The `--*-field` options as a `FieldMap`."""
    from labeler.store import FieldMap

    return FieldMap(prompt=prompt_field, response_a=a_field, response_b=b_field, id=id_field, label=label_field)


@contextmanager
def usage_errors(*errors: type[Exception]) -> Iterator[None]:
    """A ValueError (or one of `errors`) from building an options object (`JudgeConfig`, `EvalOptions`,
    `RoutingRules`, the retrain configs) is a usage error: `Invalid value: ...` and exit 2."""
    try:
        yield
    except (ValueError, *errors) as exc:
        raise typer.BadParameter(str(exc)) from None


@contextmanager
def api_errors() -> Iterator[None]:
    """`labeler.api` raises UsageError for a bad option before doing any work: `Invalid value: ...`, exit 2. (Only
    that class: a ValueError from deep inside a stage is a bug, and shows as one.)"""
    from labeler.errors import UsageError

    try:
        yield
    except UsageError as exc:
        raise typer.BadParameter(str(exc)) from None
