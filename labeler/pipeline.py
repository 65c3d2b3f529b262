"""The stages a user runs, as library calls: the CLI only parses options and renders these results.

Here: which judge to use (`judge_for`, the one place that resolves `--judge/--model/--backend/--mode/-k`) and
annotate (ingest, then judge what is pending). Ingest is `labeler.ingestion`, export `labeler.exporting`,
eval/calibrate `labeler.evaluation`, review `labeler.review`, retrain `labeler.retraining`."""

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from labeler.errors import LabelerError, RequestLimitReached, StoreBusy
from labeler.ingestion import DEFAULT_MAX_CHARS, FileReport, ingest_files
from labeler.judge.backends import make_backend
from labeler.judge.judge import Judge, JudgeConfig
from labeler.progress import silent
from labeler.store import FieldMap, Store
from schemas import Judgment, Pair, Sample

# How pending pairs get judged: (judge, pairs, batch size, run id) -> finished batches, in any order. The default
# judges in this process; `labeler.scale.RayRunner` judges on a Ray cluster and hands the batches back here.
Runner = Callable[[Judge, list[Pair], int, str], Iterator[tuple[list[Judgment], list[Sample]]]]


@dataclass
class AnnotateResult:
    ingested: list[FileReport]
    judge_id: str
    judge_key: str
    run_id: str | None
    pending: int
    judged: list[Judgment] = field(default_factory=list)
    seconds: float = 0.0
    temperature: float | None = None  # the judge's stored calibration (`labeler calibrate`), if any
    stored: int = 0  # pairs in the store
    compared: int = 0  # relabel: pairs that had a label from another judge
    changed: int = 0  # ... and how many of them the new judge labels differently
    stopped: str | None = None  # why the run stopped before judging every pending pair (--max-requests)

    @property
    def pairs_per_second(self) -> float:
        return len(self.judged) / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class JudgeRecipe:
    """What `build_judge` builds a judge from; picklable, so a Ray actor builds its own copy of the judge."""

    backend: str
    model: str | None
    config: JudgeConfig
    batch_size: int
    dtype: str | None = None
    device: str | None = "auto"
    backend_options: dict = field(default_factory=dict)

    def build(self) -> Judge:
        made = make_backend(self.backend, model=self.model, batch_size=self.batch_size, dtype=self.dtype,
                            device=self.device, **self.backend_options)
        if self.backend == "reward":  # a Bradley-Terry judge version scores the pair, not a judge prompt
            from labeler.judge.reward import RewardJudge

            judge = RewardJudge(made, self.config)
        else:
            judge = Judge(made, self.config)
        judge.recipe = self
        return judge


def build_judge(backend: str, model: str | None, config: JudgeConfig, batch_size: int,
                dtype: str | None = None, device: str | None = "auto", **backend_options) -> Judge:
    """`dtype` None follows the device (float32 on the CPU, bfloat16 on CUDA); `backend_options` go to the backend
    as they are (the openai backend's base_url, tokenizer, concurrency)."""
    return JudgeRecipe(backend, model, config, batch_size, dtype, device, backend_options).build()


def resolve_judge(store: Store, backend: str, model: str | None, version: str | None = None,
                  relabel: bool = False):
    """Which judge annotate/eval use (a `trainer.versions.JudgeSpec`): `--judge VERSION` (or the built-in names
    `starter` and `base`), else `--model` (or a non-default backend) as given, else the active judge version, else
    the shipped starter judge (the untrained default model where an install has none)."""
    from trainer.versions import JudgeSpec, builtin, spec

    if version and model:
        raise LabelerError("--judge and --model both choose the judge; pass one of them")
    if version:
        return builtin(version) or spec(store, version)
    if model or backend != "transformers":
        return JudgeSpec(backend, model)
    active = spec(store)
    if active is None and relabel:
        raise LabelerError("--relabel re-judges with the active judge version, and there is none yet "
                           "(run `labeler retrain`, or pass --judge VERSION or --model PATH)")
    return active or builtin(None)


def judge_for(store: Store, backend: str = "transformers", model: str | Path | None = None,
              version: str | None = None, mode: str | None = None, samples: int | None = None, batch_size: int = 8,
              relabel: bool = False, dtype: str | None = None, device: str | None = "auto",
              backend_options: dict | None = None, **decoding) -> Judge:
    """The judge annotate, eval and calibrate use for these options, built: `resolve_judge` picks the model; the
    mode defaults to the judge version's (else direct), K to the version's for that mode (else 4 for cot, 1).
    A bad combination of options raises ValueError (the CLI reports it as a usage error)."""
    spec = resolve_judge(store, backend, str(model) if model else None, version, relabel)
    mode = mode or spec.mode or "direct"
    default_k = spec.samples if spec.mode == mode and spec.samples else (4 if mode == "cot" else 1)
    config = JudgeConfig(mode=mode, samples=default_k if samples is None else samples, **decoding)
    judge = build_judge(spec.backend, spec.model, config, batch_size, dtype, device, **(backend_options or {}))
    _store_shipped_calibration(store, judge)
    return judge


def _store_shipped_calibration(store: Store, judge: Judge) -> None:
    """The starter judge comes calibrated: its shipped temperature is stored on first use, unless the store already
    has one for it (`labeler calibrate` fits and replaces it; `--clear` removes it until the next use)."""
    from labeler.judge.backends import starter

    record = starter.calibration()
    key = (judge.judge_id, judge.config.mode, judge.config.samples)
    if record is not None and (record.judge_id, record.mode, record.samples) == key and store.calibration(*key) is None:
        store.save_calibration(record)


def label_changes(store: Store, result: AnnotateResult) -> tuple[int, int]:
    """(compared, changed): the new labels against each pair's previous latest label from another judge."""
    return store.label_changes(result.judge_key, [j.pair_id for j in result.judged])


def annotate(
    store: Store,
    files: list[Path],
    judge: Judge,
    fields: FieldMap = FieldMap(),
    limit: int | None = None,
    batch_size: int = 8,
    strict: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    progress: Callable[[int], Callable] | None = None,
    pair_ids: list[str] | None = None,
    command: str = "annotate",
    skip_human: bool = False,
    runner: Runner | None = None,
) -> AnnotateResult:
    """Ingest `files`, then judge every pair (or every pair of `pair_ids`) that has no label from this judge,
    committing per batch. `runner` judges the batches elsewhere (a Ray cluster); this process still writes them."""
    reports = ingest_files(store, files, fields, strict, max_chars)
    pending = store.pending_pairs(judge.judge_key, limit, skip_human=skip_human, pair_ids=pair_ids)
    result = AnnotateResult(reports, judge.judge_id, judge.judge_key, None, len(pending), stored=store.count("pairs"))
    pending = _within_request_budget(judge, pending, result)
    calibration = store.calibration(judge.judge_id, judge.config.mode, judge.config.samples)
    result.temperature = calibration.temperature if calibration else None
    if not pending:
        return result
    run_id = uuid.uuid4().hex[:12]
    result.run_id = run_id
    batch_size = judge.config.batch_pairs(batch_size)
    params = {**vars(judge.config), "files": [str(f) for f in files], "batch_size": batch_size,
              **getattr(runner, "params", {})}
    store.start_run(run_id, command, len(pending), judge.judge_key, judge.judge_id, judge.config.mode,
                    judge.config.samples, params)
    store.release()
    started = time.perf_counter()
    status = "interrupted"
    try:
        with (progress or silent)(len(pending)) as advance:
            bar = _Bar(advance)
            batches = (runner(judge, pending, batch_size, run_id) if runner
                       else _leased_batches(store, judge, pending, batch_size, run_id, bar))
            for judgments, samples in batches:
                _save_keeping_the_batch(store, run_id, judgments, samples)
                store.release()  # let `labeler status` and other runs in while the next batch computes
                result.judged.extend(judgments)
                bar.stored(len(judgments), judge.pairs_sampled(samples))
        status = "finished"
    except RequestLimitReached as stop:  # the batch in flight is dropped whole; a rerun judges it
        result.stopped = f"{stop}; rerun to judge the rest"
    finally:
        result.seconds = time.perf_counter() - started
        store.finish_run(run_id, status)
    return result


def _within_request_budget(judge: Judge, pending: list[Pair], result: AnnotateResult) -> list[Pair]:
    """The pending pairs a server judge may send requests for: as many as `--max-requests` allows (the rest wait
    for a rerun), and, against a non-local address, only once the backend's `confirm` accepts the estimate."""
    from labeler.judge.cost import estimate, per_pair_requests

    backend, per_pair = judge.backend, per_pair_requests(judge)
    if per_pair is None or not pending:
        return pending
    budget = getattr(backend, "max_requests", None)
    if budget is not None and budget // per_pair < len(pending):
        fits = budget // per_pair
        result.stopped = (f"--max-requests {budget} covers {fits} of {len(pending)} pending pairs (up to {per_pair} "
                          "requests each); rerun to judge the rest")
        pending = pending[:fits]
    confirm = getattr(backend, "confirm", None)
    if pending and confirm is not None and not backend.is_local and not confirm(estimate(judge, pending)):
        raise LabelerError(f"nothing sent to {backend.base_url}: not confirmed")
    return pending


class _Bar:
    """The progress bar moves by the share of a pair each finished sample reports, and by the rest of each pair
    when it is stored. Pairs stored together need not be the pairs whose samples were reported since the last
    store (adaptive voting's pairs in flight), so each store takes back at most its own pairs' samples' shares."""

    def __init__(self, advance: Callable):
        self.advance, self.shown = advance, 0.0

    def share(self, x: float) -> None:
        self.shown += x
        self.advance(x)

    def stored(self, pairs: int, sampled: float = 0.0) -> None:
        """`pairs` stored whose samples make up `sampled` pairs (or were passed over: 0)."""
        credit = min(self.shown, sampled)
        self.advance(pairs - credit)
        self.shown -= credit


def _leased_batches(store: Store, judge: Judge, pending: list[Pair], width: int, run_id: str,
                    bar: _Bar) -> Iterator[tuple[list[Judgment], list[Sample]]]:
    """The default runner, in this process: pairs are leased before they are judged, so concurrent runs judge
    disjoint pairs; pairs judged or held by another run meanwhile are passed over. `judge.stream` takes pairs as
    it has room for them (adaptive voting: as pairs in flight finish) and yields them judged."""
    by_id = {pair.pair_id: pair for pair in pending}
    remaining = list(by_id)

    def take(n: int) -> list[Pair]:
        nonlocal remaining
        claimed, passed = store.claim_pairs(judge.judge_key, run_id, remaining, n)
        remaining = remaining[len(claimed) + passed:]
        store.release()
        bar.stored(passed)
        return [by_id[p] for p in claimed]

    yield from judge.stream(take, width, run_id, bar.share)


def resume_note(store: Store, judge: Judge, command: str = "annotate", skip_human: bool = False) -> str | None:
    """"resuming run X: N of M done" when the last run of this judge and command stopped before its end and
    pairs are left to judge."""
    run = store.unfinished_run(judge.judge_key, command)
    if run is None or not store.pending_pairs(judge.judge_key, 1, skip_human=skip_human):
        return None
    run_id, done, target = run
    return f"resuming run {run_id}: {done} of {target} done"


def _save_keeping_the_batch(store: Store, run_id: str, judgments, samples, attempts: int = 20) -> None:
    """Commit a judged batch; while another process holds the database, wait again (each wait is the store's
    lock wait, 30 s by default) rather than throw away judgments that took minutes to compute."""
    for attempt in range(attempts):
        try:
            return store.save_batch(run_id, judgments, samples)
        except StoreBusy:
            if attempt == attempts - 1:
                raise
            print(f"labeler: {store.path} is busy; keeping the {len(judgments)} judged pairs and waiting again",
                  file=sys.stderr)
