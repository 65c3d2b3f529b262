"""The retrain stage (`labeler retrain`): gold labels -> split -> STaR data -> TRL -> new version -> gate -> publish.

Work happens in `<judges dir>/.tmp-<run key>/`, where the run key hashes the starting judge, the configs and the
training gold set. Each iteration writes `iterN/rows.jsonl` (its data), TRL checkpoints in `iterN/checkpoints/`
and finally `iterN/model/`; a killed run, started again with the same inputs, skips what is done and resumes
training from the last checkpoint. The store is released while models train, so other commands keep working.
"""

from __future__ import annotations

import gc
import hashlib
import json
import random
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from labeler.errors import LabelerError
from labeler.extras import require
from labeler.ingestion import ingest_files
from labeler.judge.backends.devices import resolve_device
from labeler.judge.backends.models import model_fingerprint
from labeler.judge.backends.starter import STARTER
from labeler.judge.judge import JudgeConfig
from labeler.paths import atomic_write
from labeler.pipeline import annotate, build_judge
from labeler.store import Store
from schemas import GoldPair, JudgeVersion, RetrainResult, TrainingRow
from trainer import star as star_data
from trainer.common import StartPoint, train_and_save
from trainer.config import REWARD_METHODS, RetrainConfig, StarConfig, _TrainConfig, as_dict, build_configs, load_yaml
from trainer.versions import (CONFIG_FILE, JudgeSpec, builtin, default_method, next_version_name, probe_prior, publish,
                              register, start_point)
from trainer.versions import judges_dir as default_judges_dir

Progress = Callable[[int, str], object]  # (total, description) -> context manager yielding advance(n)


@dataclass
class RetrainPlan:
    retrain: RetrainConfig
    star: StarConfig
    train: _TrainConfig
    judges_root: Path
    model: Path | None = None  # start from this model dir instead of the active judge
    gold_files: list[Path] = field(default_factory=list)
    quiet: bool = False
    start_judge: str | None = None  # start from this version (or `base`/`starter`) instead of the active judge
    method_given: bool = True  # False: `retrain` picks the method by the start judge's kind (versions.default_method)
    sections: dict = field(default_factory=dict)  # the merged options, to build the configs again for that method
    prior: Path | None = None  # a bt-probe judge whose heads the run keeps and corrects (set by `retrain`)
    smooth: dict[str, float] = field(default_factory=dict)  # --suspects smooth: pair id -> target (set by `retrain`)


def make_plan(db: Path, flags: dict[str, dict], config_file: Path | None = None, judges_dir: Path | None = None,
              model: Path | None = None, gold_files: list[Path] = (), quiet: bool = False,
              start_judge: str | None = None) -> RetrainPlan:
    """The plan for `labeler retrain`: defaults, overridden by the YAML `config_file` (`retrain:`/`star:`/`train:`),
    overridden by the `flags` that were given (None = not given). A bad config raises ValueError or OSError, a
    missing gold file LabelerError."""
    sections = load_yaml(config_file) if config_file else {}
    merged = {name: {**sections.get(name, {}), **{k: v for k, v in flags.get(name, {}).items() if v is not None}}
              for name in ("retrain", "star", "train")}
    retrain_cfg, star_cfg, train_cfg = build_configs(merged)
    method_given = merged["retrain"].get("method") is not None
    if method_given and retrain_cfg.method != "bt-probe":  # the only method that trains without TRL and peft
        require("train", f"retrain --method {retrain_cfg.method}")
    for path in gold_files:
        if not path.exists():
            raise LabelerError(f"{path}: no such file")
    if model is not None and start_judge is not None:
        raise LabelerError("--judge and --model both choose where training starts; pass one of them")
    resolve_device(train_cfg.device)  # `--device cuda` without CUDA fails here, before any work
    return RetrainPlan(retrain_cfg, star_cfg, train_cfg, default_judges_dir(db, judges_dir), model, list(gold_files),
                       quiet, start_judge, method_given, merged)


def settle_method(store: Store, plan: RetrainPlan) -> RetrainPlan:
    """The plan with its method settled (by the start judge's kind when none was given) and, for bt-probe from a
    probe judge, the judge whose heads it continues."""
    if not plan.method_given:
        sections = {**plan.sections, "retrain": {**plan.sections.get("retrain", {}),
                                                 "method": default_method(store, plan.model, plan.start_judge)}}
        retrain_cfg, star_cfg, train_cfg = build_configs(sections)
        if retrain_cfg.method != "bt-probe":
            require("train", f"retrain --method {retrain_cfg.method}")
        plan = replace(plan, retrain=retrain_cfg, star=star_cfg, train=train_cfg, method_given=True)
    if plan.retrain.method == "bt-probe":
        plan = replace(plan, prior=probe_prior(store, plan.model, plan.start_judge))
    elif plan.retrain.suspects == "smooth":
        raise LabelerError(f"--suspects smooth needs --method bt-probe (soft targets); {plan.retrain.method} "
                           "cannot train on them: use drop or flip")
    return plan


def apply_suspects(train: list[GoldPair], suspects: dict[str, float], how: str, log: Callable[[str], None]
                   ) -> list[GoldPair]:
    """Keep, drop or flip the training pairs whose human label `labeler audit` flagged (held-out pairs stay as
    they are: the promotion gate judges by the labels people gave); `smooth` is applied to the rows
    (`_build_rows`)."""
    hit = [g for g in train if g.pair.pair_id in suspects]
    if not hit or how in ("keep", "smooth"):
        if hit:
            log(f"{len(hit)} training pairs have a suspect human label (labeler audit): "
                + ("kept (--suspects keep)" if how == "keep" else "their targets smoothed (--suspects smooth)"))
        return train
    log(f"{len(hit)} training pairs with a suspect human label: {'dropped' if how == 'drop' else 'flipped'}")
    if how == "drop":
        return [g for g in train if g.pair.pair_id not in suspects]
    flip = {"A": "B", "B": "A"}
    return [g.model_copy(update={"label": flip[g.label]}) if g.pair.pair_id in suspects else g for g in train]


def assign_split(gold: list[GoldPair], fraction: float, seed: int) -> list[tuple[str, str, str]]:
    """(pair_id, split, prompt_hash) for gold pairs without a split. Pairs of a prompt already split follow it;
    new prompts are shuffled with `seed` and `fraction` of them held out (at least one prompt on each side
    while a side is still empty)."""
    known = {g.prompt_hash: g.split for g in gold if g.split}
    new = [g for g in gold if g.split is None]
    prompts = sorted({g.prompt_hash for g in new} - known.keys())
    random.Random(seed).shuffle(prompts)
    n_held = round(fraction * len(prompts))
    if len(prompts) >= 2:
        if n_held == 0 and "heldout" not in known.values():
            n_held = 1
        if n_held == len(prompts) and "train" not in known.values():
            n_held -= 1
    held = set(prompts[:n_held])
    return [(g.pair.pair_id, known.get(g.prompt_hash) or ("heldout" if g.prompt_hash in held else "train"),
             g.prompt_hash) for g in new]


def _run_key(start: StartPoint, plan: RetrainPlan, train: list[GoldPair], heldout: list[GoldPair]) -> str:
    configs = as_dict(plan.retrain, plan.star, plan.train)
    for volatile in ("force", "batch_size"):
        configs["RetrainConfig"].pop(volatile)
    configs[type(plan.train).__name__].pop("device")  # a run killed on one device resumes on another
    payload = {"start": str(start.judge_dir), "prior": str(plan.prior), "smooth": plan.smooth, "fingerprint": model_fingerprint(start.judge_dir), "configs": configs,
               "train": [(g.pair.pair_id, g.label) for g in train], "heldout": [g.pair.pair_id for g in heldout]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _judge(spec: JudgeSpec, mode: str, samples: int, plan: RetrainPlan):
    config = JudgeConfig(mode=mode, samples=samples if mode == "cot" else 1,
                         max_new_tokens=plan.retrain.eval_max_new_tokens)
    return build_judge(spec.backend, spec.model, config, plan.retrain.batch_size, device=plan.train.device)


def _annotate(store: Store, judge, ids: list[str], plan: RetrainPlan, progress: Progress, label: str,
              command: str) -> None:
    annotate(store, [], judge, pair_ids=ids, batch_size=plan.retrain.batch_size, command=command,
             progress=lambda total: progress(total, label))


def heldout_agreement(store: Store, judge, heldout: list[GoldPair], plan: RetrainPlan, progress: Progress,
                      label: str) -> float:
    """Share of held-out pairs where the judge's label equals the gold label (undecided counts as wrong).
    Judgments are stored under the judge's key, so a judge already evaluated on these pairs is not re-run."""
    ids = [g.pair.pair_id for g in heldout]
    _annotate(store, judge, ids, plan, progress, label, "retrain-eval")
    labels = store.judged_labels(judge.judge_key, ids)
    return sum(labels.get(g.pair.pair_id) == g.label for g in heldout) / len(heldout)


def _write_jsonl(path: Path, rows: list[TrainingRow]) -> None:
    atomic_write(path, "".join(r.model_dump_json() + "\n" for r in rows))


def _read_jsonl(path: Path) -> list[TrainingRow]:
    return [TrainingRow.model_validate_json(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _build_rows(store: Store, current: StartPoint, iteration: int, train: list[GoldPair], plan: RetrainPlan,
                progress: Progress, log: Callable[[str], None]) -> tuple[list[TrainingRow], dict]:
    method = plan.retrain.method
    if method in REWARD_METHODS:
        rows = [row.model_copy(update={"target": plan.smooth[row.pair_id]}) if row.pair_id in plan.smooth else row
                for row in star_data.bt_rows(train)]
        return rows, {"pairs": len(train), "smoothed": sum(row.pair_id in plan.smooth for row in rows)}
    spec = JudgeSpec("transformers", str(current.judge_dir))
    if method == "genrm-sft":
        judge = _judge(spec, "direct", 1, plan)
        return star_data.genrm_rows(judge, train), {"pairs": len(train), "judge_id": judge.judge_id}
    judge = build_judge("transformers", spec.model, star_data.cot_config(plan.star), plan.retrain.batch_size,
                        device=plan.train.device)
    ids = [g.pair.pair_id for g in train]
    if iteration == 1:  # a registered judge (or the base model): its samples are stored and reused
        before = len(store.pending_pairs(judge.judge_key, pair_ids=ids))
        _annotate(store, judge, ids, plan, progress, f"iteration {iteration}: sampling (K={plan.star.samples})",
                  "retrain-sample")
        samples = {pid: store.samples_for(pid, judge.judge_key) for pid in ids}
        reused = len(ids) - before
    else:  # an intermediate judge of this run: sample in memory, store nothing
        samples, reused = {}, 0
        with progress(len(train), f"iteration {iteration}: sampling (K={plan.star.samples})") as advance:
            for start in range(0, len(train), plan.retrain.batch_size):
                batch = [g.pair for g in train[start : start + plan.retrain.batch_size]]
                for s in judge.judge(batch, "retrain")[1]:
                    samples.setdefault(s.pair_id, []).append(s)
                advance(len(batch))
    store.release()
    rows, stats = star_data.star_rows(judge, train, samples, plan.star, method, iteration, plan.retrain.batch_size,
                                      lambda total: progress(total, f"iteration {iteration}: rationalizing"))
    stats.reused_pairs, stats.sampled_pairs = reused, len(ids) - reused
    log(f"iteration {iteration}: {stats.rows} rows from {stats.correct_chains} correct / {stats.wrong_chains} "
        f"wrong chains, {stats.rationalizations_kept} rationalizations, {stats.notes_used} reviewer notes "
        f"({stats.reused_pairs} pairs' samples reused)")
    return rows, {**stats.as_dict(), "judge_id": judge.judge_id, "judge_key": judge.judge_key}


def _train(current: StartPoint, rows: list[TrainingRow], plan: RetrainPlan, itdir: Path, progress: Progress) -> dict:
    from trainer import bt, dpo, probe, sft, verdict

    if plan.retrain.method == "bt-probe":  # no TRL: features of the frozen base, then a logistic head
        return probe.train(current, rows, plan.train, itdir, None if plan.quiet else progress, plan.prior)
    module = {"star-dpo": dpo, "star-sft": sft, "genrm-sft": verdict, "bt": bt}[plan.retrain.method]
    trainer = module.make_trainer(current, rows, plan.train, itdir / "checkpoints", plan.quiet)
    base = current.base_model if not plan.train.full else itdir / "model"
    try:
        return train_and_save(trainer, itdir / "checkpoints", itdir / "model", trainer.processing_class, base)
    finally:
        del trainer
        gc.collect()


def _iterate(store: Store, start: StartPoint, train: list[GoldPair], plan: RetrainPlan, work: Path,
             progress: Progress, log: Callable[[str], None]) -> tuple[StartPoint, list[TrainingRow], list[dict], bool]:
    current, all_rows, history, resumed = start, [], [], False
    for iteration in range(1, plan.retrain.iterations + 1):
        itdir = work / f"iter{iteration}"
        itdir.mkdir(parents=True, exist_ok=True)
        rows_file, model_dir = itdir / "rows.jsonl", itdir / "model"
        if rows_file.exists():
            rows, info = _read_jsonl(rows_file), json.loads((itdir / "data.json").read_text())
            resumed = True
        else:
            rows, info = _build_rows(store, current, iteration, train, plan, progress, log)
            if not rows:
                raise LabelerError(f"iteration {iteration}: no training rows could be built from {len(train)} gold "
                                   "pairs (no correct/incorrect chains; try more --samples or --rationalize)")
            atomic_write(itdir / "data.json", json.dumps(info, indent=2, default=str))
            _write_jsonl(rows_file, rows)
        if model_dir.is_dir() and (itdir / "train.json").exists():
            metrics, resumed = json.loads((itdir / "train.json").read_text()), True
        else:
            store.release()
            log(f"iteration {iteration}: training {plan.retrain.method} on {len(rows)} rows"
                + (" (resuming from a checkpoint)" if (itdir / "checkpoints").is_dir() else ""))
            metrics = _train(current, rows, plan, itdir, progress)
            resumed = resumed or bool(metrics.get("resumed_from"))
            atomic_write(itdir / "train.json", json.dumps(metrics, indent=2, default=str))
        history.append({"iteration": iteration, "data": info, "train": metrics})
        all_rows += rows
        current = StartPoint.of(model_dir)
    return current, all_rows, history, resumed


@contextmanager
def _run(store: Store, plan: RetrainPlan, n: int):
    run_id = uuid.uuid4().hex[:12]
    store.start_run(run_id, "retrain", n, params={"configs": as_dict(plan.retrain, plan.star, plan.train)})
    store.release()
    status = "interrupted"
    try:
        yield run_id
        status = "finished"
    finally:
        store.finish_run(run_id, status)
        store.release()


def retrain(store: Store, plan: RetrainPlan, progress: Progress, log: Callable[[str], None] = lambda m: None
            ) -> RetrainResult:
    started = time.perf_counter()
    plan = settle_method(store, plan)
    if plan.gold_files:
        ingest_files(store, plan.gold_files)
    r = plan.retrain
    store.save_split(assign_split(store.gold_pairs(), r.heldout_fraction, r.split_seed), r.split_seed)
    gold = store.gold_pairs()
    suspects = store.suspects()
    train = apply_suspects([g for g in gold if g.split == "train"][: r.limit], suspects, r.suspects, log)
    if r.suspects == "smooth":
        plan = replace(plan, smooth=suspects)
    heldout = [g for g in gold if g.split == "heldout"]
    if not train or not heldout:
        raise LabelerError(f"retrain needs gold labels on at least two different prompts (one to train on, one "
                           f"held out); the store has {len(gold)} gold pair(s): {len(train)} train, "
                           f"{len(heldout)} held out (ingest a file with a `label` field, or use --gold FILE)")
    start, parent = start_point(store, plan.model, plan.start_judge)
    log(f"{len(train)} gold pairs to train on, {len(heldout)} held out; {r.method} "
        + (f"continuing the heads of {plan.prior}" if plan.prior else
           f"starting from {parent.version if parent else start.judge_dir}"))
    root = plan.judges_root
    root.mkdir(parents=True, exist_ok=True)
    work = root / f".tmp-{_run_key(start, plan, train, heldout)}"
    with _run(store, plan, len(train)):
        final, rows, history, resumed = _iterate(store, start, train, plan, work, progress, log)
        name = next_version_name(store, root, r.method)
        for stale in work.glob("v*-*"):  # a version dir left by a run killed before it was published
            shutil.rmtree(stale, ignore_errors=True)
        vdir = work / name
        shutil.copytree(final.judge_dir, vdir)
        snapshots = work / f"iter{r.iterations}" / "checkpoints" / "snapshots"
        if snapshots.is_dir():  # learning-curve snapshots (train.snapshot_pairs) travel with the version
            shutil.copytree(snapshots, vdir / "snapshots", ignore=shutil.ignore_patterns(".*.tmp"))
        record = _describe(name, plan, start, parent, final, root / name)
        _write_manifest(vdir, record, plan, train, heldout, rows, history)
        new_spec = JudgeSpec(record.backend, str(vdir), record.mode, record.samples, name)
        judge = _judge(new_spec, record.mode, record.samples, plan)
        record.judge_id = judge.judge_id
        new = heldout_agreement(store, judge, heldout, plan, progress, f"held-out: {name}")
        del judge
        gc.collect()
        incumbent, incumbent_mode = _incumbent(store, start, record.mode)
        judge = _judge(incumbent, incumbent_mode, record.samples, plan)
        old = heldout_agreement(store, judge, heldout, plan, progress, f"held-out: {judge.judge_id}")
        del judge
        gc.collect()
        promoted = new >= old or r.force
        record = record.model_copy(update={
            "heldout_n": len(heldout), "heldout_agreement": new, "parent_agreement": old, "promoted": promoted,
            "active": promoted, "metrics": {"heldout": {"n": len(heldout), "new": new, "parent": old},
                                            "iterations": history, "seconds": time.perf_counter() - started}})
        (vdir / "metrics.json").write_text(json.dumps(record.metrics, indent=2, default=str))
        publish(vdir, root)
        register(store, record)
        shutil.rmtree(work, ignore_errors=True)
    return RetrainResult(version=name, method=r.method, path=record.path, parent=record.parent,
                         start_judge_id=record.start_judge_id, promoted=promoted, forced=promoted and new < old,
                         active=promoted, heldout_n=len(heldout), heldout_agreement=new, parent_agreement=old,
                         train_pairs=len(train), train_rows=len(rows), resumed=resumed,
                         seconds=time.perf_counter() - started,
                         reference_agreement=history[-1]["train"].get("reference_agreement"),
                         reference_agreement_before=history[-1]["train"].get("reference_agreement_before"))


def _incumbent(store: Store, start: StartPoint, mode: str) -> tuple[JudgeSpec, str]:
    """The judge the new one would replace, as it is used: the active version (its own backend and mode), else
    the shipped starter judge (what judges while no version is active), else the model the run started from, in
    the new judge's mode."""
    active = store.active_judge()
    if active is not None:
        return JudgeSpec(active.backend, active.path, active.mode, active.samples, active.version), active.mode
    default = builtin(None)
    if default.version == STARTER:
        return default, default.mode
    return JudgeSpec("transformers", str(start.judge_dir)), mode


def _describe(name: str, plan: RetrainPlan, start: StartPoint, parent: JudgeVersion | None, final: StartPoint,
              path: Path) -> JudgeVersion:
    """The registry row (its path is where the dir will be published); agreement fields are filled later."""
    r = plan.retrain
    start_id = parent.judge_id if parent else f"{start.judge_dir.name}@{model_fingerprint(start.judge_dir)}"
    weights = "head" if r.method == "bt-probe" else "full" if plan.train.full else "lora"
    return JudgeVersion(
        version=name, method=r.method, parent=parent.version if parent else None, start_judge_id=start_id,
        base_model=str(path if weights == "full" else final.base_model), path=str(path), weights=weights,
        backend="reward" if r.method in REWARD_METHODS else "transformers", mode=r.mode,
        samples=r.eval_samples if r.mode == "cot" else 1, judge_id="", heldout_n=0, promoted=False, active=False,
        created_at=datetime.now(timezone.utc).replace(tzinfo=None))


def _write_manifest(vdir: Path, record: JudgeVersion, plan: RetrainPlan, train: list[GoldPair],
                    heldout: list[GoldPair], rows: list[TrainingRow], history: list[dict]) -> None:
    _write_jsonl(vdir / "train_data.jsonl", rows)
    digest = hashlib.sha256((vdir / "train_data.jsonl").read_bytes()).hexdigest()
    config = {**record.model_dump(mode="json", exclude={"metrics", "path", "active", "promoted", "judge_id", "heldout_n",
                                                         "heldout_agreement", "parent_agreement"}),
              "configs": as_dict(plan.retrain, plan.star, plan.train)}
    (vdir / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=str))
    manifest = {"train_pairs": [{"pair_id": g.pair.pair_id, "label": g.label} for g in train],
                "heldout_pairs": [{"pair_id": g.pair.pair_id, "label": g.label} for g in heldout],
                "split_seed": plan.retrain.split_seed, "train_data": "train_data.jsonl", "train_data_sha256": digest,
                "rows": len(rows), "iterations": [{"iteration": h["iteration"], **h["data"]} for h in history]}
    (vdir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
