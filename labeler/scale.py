"""Judging on a Ray cluster (`labeler annotate --ray ADDRESS`, `labeler eval --ray ADDRESS`).

The pending pairs, cut into the same batches a run in one process judges, become a Ray Data dataset of one batch
per row; `map_batches` sends them to a pool of actors, each holding one judge built from the driver's judge
recipe (never the store). Every finished batch comes back to the driver, where `pipeline.annotate` writes it to
the store, so the one DuckDB file stays the only source of truth and a rerun resumes by judge key.

Ray is an optional extra (`pip install 'labeler[ray]'`): checked when a runner is made, imported when it starts.
"""

import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from pydantic import TypeAdapter

from labeler.errors import LabelerError
from labeler.extras import require
from labeler.judge.judge import Judge
from schemas import Judgment, Pair, Sample

LOCAL = "local"  # --ray local: start Ray on this machine for the run
# Fault injection for the tests: when this names a file that exists, the first actor to claim it dies mid-batch.
CRASH_ONCE_ENV = "LABELER_RAY_CRASH_ONCE"

ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}")
ACTOR_ERROR = re.compile(r"^labeler\.errors\.\w+: (.+)$", re.MULTILINE)
PAIRS = TypeAdapter(list[Pair])
JUDGMENTS = TypeAdapter(list[Judgment])
SAMPLES = TypeAdapter(list[Sample])


@dataclass(frozen=True)
class RayOptions:
    address: str = LOCAL  # "local", "auto" (the cluster `ray start` runs here), HOST:PORT or ray://HOST:PORT
    actors: int = 2  # judges running at once, one per actor
    num_cpus: int | None = None  # local Ray only: the CPUs it may use (default: all of this machine's)
    num_cpus_per_actor: float = 1.0
    num_gpus_per_actor: float = 0.0

    def __post_init__(self):
        if not self.address or self.address.startswith("-"):  # `--ray --actors 2` takes `--actors` as the address
            got = f", got {self.address!r} (an option: --ray takes a value)" if self.address else ""
            raise ValueError(f"--ray needs an address: local, auto or HOST:PORT{got}")
        if self.address not in (LOCAL, "auto") and not ADDRESS.fullmatch(self.address):
            raise ValueError(f"--ray {self.address!r}: not local, auto, HOST:PORT or ray://HOST:PORT")
        if self.actors < 1 or self.num_cpus_per_actor <= 0 or self.num_gpus_per_actor < 0:
            raise ValueError(f"need --actors >= 1, --num-cpus-per-actor > 0 and --num-gpus-per-actor >= 0; got "
                             f"{self.actors}, {self.num_cpus_per_actor}, {self.num_gpus_per_actor}")
        if self.num_cpus is not None and (self.num_cpus < 1 or self.address != LOCAL):
            raise ValueError("--num-cpus sizes the Ray that `--ray local` starts: >= 1, and only with --ray local")


class RayRunner:
    """A `pipeline.Runner`: yields each finished batch as (judgments, samples), in the order they finish.

    `fetch_seconds` and `decode_seconds` add up the driver's time waiting for and decoding finished batches."""

    def __init__(self, options: RayOptions):
        require("ray", "--ray (on every machine of the cluster)")
        self.options = options
        self.fetch_seconds = 0.0
        self.decode_seconds = 0.0

    @property
    def params(self) -> dict:
        """What the run records about where it judged (`runs.params`)."""
        return {"ray": asdict(self.options)}

    def __call__(self, judge: Judge, pairs: list[Pair], batch_size: int, run_id: str
                 ) -> Iterator[tuple[list[Judgment], list[Sample]]]:
        if judge.recipe is None:
            raise LabelerError("this judge was not built by pipeline.build_judge, so Ray workers cannot rebuild it")
        ray = _import_ray()
        started_here = _connect(ray, self.options)
        try:
            check_resources(ray.nodes(), self.options)
            yield from self._judge(ray, judge, pairs, batch_size, run_id)
        except ray.exceptions.RayError as exc:  # an actor's own error (a model missing on a node) as one line
            message = _labeler_error(exc)
            if message is None:
                raise
            raise LabelerError(message) from None
        finally:
            if started_here:
                ray.shutdown()

    def _judge(self, ray, judge: Judge, pairs: list[Pair], batch_size: int, run_id: str):
        _quiet_ray_data(ray)
        batches = [{"pairs": PAIRS.dump_json(pairs[i : i + batch_size]).decode()}
                   for i in range(0, len(pairs), batch_size)]
        # One block per batch, so each finished batch reaches the driver (and the store) on its own.
        dataset = ray.data.from_items(batches, override_num_blocks=len(batches))
        judged = dataset.map_batches(
            JudgeActor, batch_size=1, batch_format="pyarrow",
            fn_constructor_kwargs={"recipe": judge.recipe, "judge_key": judge.judge_key, "run_id": run_id},
            compute=ray.data.ActorPoolStrategy(size=self.options.actors),
            num_cpus=self.options.num_cpus_per_actor, num_gpus=self.options.num_gpus_per_actor or None,
        )
        seen: set[str] = set()
        blocks = iter(judged.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=0))
        while True:
            started = time.perf_counter()
            block = next(blocks, None)
            fetched = time.perf_counter()
            self.fetch_seconds += fetched - started
            if block is None:
                return
            finished = []
            for judgments_json, samples_json in zip(block.column("judgments").to_pylist(),
                                                    block.column("samples").to_pylist()):
                judgments = [j for j in JUDGMENTS.validate_json(judgments_json) if j.pair_id not in seen]
                fresh = {j.pair_id for j in judgments}  # a batch delivered twice (a retried task) is stored once
                seen |= fresh
                finished.append((judgments, [s for s in SAMPLES.validate_json(samples_json) if s.pair_id in fresh]))
            self.decode_seconds += time.perf_counter() - fetched
            yield from (batch for batch in finished if batch[0])


class JudgeActor:
    """One judge per Ray actor, built from the driver's recipe; refuses to judge under another judge key (the
    model files on this machine differ from the driver's)."""

    def __init__(self, recipe, judge_key: str, run_id: str):
        self.judge = recipe.build()
        self.run_id = run_id
        if self.judge.judge_key != judge_key:
            raise LabelerError(f"the judge built on {socket.gethostname()} has judge key {self.judge.judge_key}, "
                               f"the driver's has {judge_key}: give every machine the same model files")

    def __call__(self, batch):
        judgments, samples = [], []
        for text in batch.column("pairs").to_pylist():
            made, sampled = self.judge.judge(PAIRS.validate_json(text), self.run_id)
            _crash_once()
            judgments.append(JUDGMENTS.dump_json(made).decode())
            samples.append(SAMPLES.dump_json(sampled).decode())
        return {"judgments": judgments, "samples": samples}


def check_resources(nodes: list[dict], options: RayOptions) -> None:
    """Refuse an actor no node can hold: Ray would wait for such a node forever (printing autoscaler notes)."""
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    for option, key, wanted in (("--num-cpus-per-actor", "CPU", options.num_cpus_per_actor),
                                ("--num-gpus-per-actor", "GPU", options.num_gpus_per_actor)):
        largest = max((node.get(key, 0.0) for node in alive), default=0.0)
        if wanted > largest:
            raise LabelerError(f"{option} {wanted:g}: no node of the Ray cluster has that many {key}s (the largest "
                               f"has {largest:g}); ask for at most {largest:g}")


def _crash_once() -> None:
    flag = os.environ.get(CRASH_ONCE_ENV)
    if not flag:
        return
    try:
        os.rename(flag, f"{flag}.fired")  # one rename succeeds, so one actor dies, once
    except FileNotFoundError:
        return
    os._exit(1)


def _labeler_error(exc: BaseException | None) -> str | None:
    """The message of the LabelerError an actor raised, read from the Ray errors that report it (of an actor whose
    __init__ failed, Ray keeps only the text of the traceback)."""
    texts = []
    while exc is not None and len(texts) < 8:
        texts.append(str(exc))
        exc = getattr(exc, "cause", None) or exc.__cause__
    found = [m.group(1) for text in texts for m in ACTOR_ERROR.finditer(text)]
    return found[-1] if found else None


def _quiet_ray_data(ray) -> None:
    """The driver draws its own progress bar, per stored batch: no Ray Data bars, and its console log from
    warnings up (the full log stays in the Ray session's ray-data.log)."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    ray.util.debug.log_once("ray_data_progress_manager_disabled")  # spends the once-only "bars disabled" warning
    for handler in logging.getLogger("ray.data").handlers:
        if handler.get_name() == "console":
            handler.setLevel(logging.WARNING)


def _import_ray():
    import ray
    import ray.data
    import ray.exceptions
    import ray.util.debug

    return ray


def _connect(ray, options: RayOptions) -> bool:
    """Start or join Ray unless this process already did; True when this call started it (and so stops it)."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.WARNING, "configure_logging": True}
    try:
        if options.address == LOCAL:
            ray.init(address=LOCAL, num_cpus=options.num_cpus, include_dashboard=False, **quiet)
        else:
            _probe(options.address)
            ray.init(address=options.address, **quiet)
    except ConnectionError as exc:
        raise LabelerError(f"--ray {options.address}: no Ray cluster there ({' '.join(str(exc).split())})") from None
    return True


def _probe(address: str, timeout: float = 10.0) -> None:
    """Refuse a HOST:PORT nothing listens on at once: `ray.init` retries such an address forever."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto": Ray looks it up, and says at once when there is none
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ConnectionError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
