"""The audit stage (`labeler audit`): which human labels the judge's heads confidently contradict.

Every human-labelled pair in the store (after ingesting `files`) is read once by the probe judge's trunk (its
layers, token limit and dtype; the features are kept in `<judges dir>/.audit-<key>/`, so a killed audit resumes),
then scored by heads cross-fitted without its fold (trainer/probe_audit.py): as corrections of the judge's heads,
or from scratch (`scratch=True`, e.g. on the very pairs the judge was trained on, which the correction would
have seen). A temperature fitted on the cross-fitted evidence turns it into P(human's choice); a pair whose
other response gets at least `confidence` is flagged, stored in the `audits` table, and `review push --suspects`
sends it for a second look.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from labeler.errors import LabelerError
from labeler.evaluation.calibration import fit_temperature
from labeler.ingestion import ingest_files
from labeler.store import Store
from schemas import AuditReport, AuditRow
from schemas.records import AuditGroup
from trainer.config import ProbeTrainConfig
from trainer.versions import judges_dir, probe_prior


def audit(store: Store, files: list[Path], judge: str | None = None, scratch: bool = False, folds: int = 5,
          confidence: float = 0.7, members: int = 10, judges_root: Path | None = None, progress=None,
          layers: int = 8) -> AuditReport:
    """`layers`: where new heads read their features (`scratch` only; a judge's heads read where it reads)."""
    import torch

    from labeler.judge.backends.probe import ProbeHead, probe_base, read_config
    from labeler.judge.backends.models import default_model_dir, model_fingerprint
    from trainer import star
    from trainer.common import StartPoint
    from trainer.probe import read_reference, row_features
    from trainer.probe_audit import cross_fit

    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0.5, 1), got {confidence}")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if files:
        ingest_files(store, files)
    gold = store.gold_pairs()
    if len({g.prompt_hash for g in gold}) < folds:
        raise LabelerError(f"an audit with {folds} folds needs human labels on at least {folds} prompts; the store "
                           f"has {len(gold)} human-labelled pair(s) on {len({g.prompt_hash for g in gold})} prompt(s)")
    prior_dir = None if scratch else probe_prior(store, None, judge)
    if prior_dir is None and not scratch:
        raise LabelerError("the audit cross-fits a probe judge's heads (the starter, or a bt-probe version); the "
                           "active judge is not one: pass --judge starter, or --from-scratch")
    cfg = ProbeTrainConfig(members=members, layers=layers)
    if prior_dir is not None and not scratch:
        kept = read_config(prior_dir)
        cfg = replace(cfg, layers=int(kept["layers"]), max_tokens=int(kept["max_tokens"]),
                      bf16=bool(kept.get("bf16", True)), safety_sources=",".join(kept.get("safety_sources", [])))
        base = probe_base(prior_dir)
    else:
        base = default_model_dir()
    rows = star.bt_rows(gold)
    key = hashlib.sha256(json.dumps([str(base), model_fingerprint(base), cfg.layers, cfg.max_tokens, cfg.bf16,
                                     [(g.pair.pair_id, g.label) for g in gold]]).encode()).hexdigest()[:12]
    work = (judges_root or judges_dir(store.path)) / f".audit-{key}"
    store.release()
    better, worse = row_features(StartPoint.of(base), rows, cfg, work, progress)
    safety = torch.tensor([r.source in cfg.safety_set() for r in rows])
    prior = None if scratch else ProbeHead.load(prior_dir)
    ref = None if scratch else read_reference(prior_dir)
    rehearse = None if ref is None else (ref["better"][~ref["heldout"]], ref["worse"][~ref["heldout"]])
    fit = cross_fit(better, worse, safety, [g.pair.prompt for g in gold], cfg, prior, folds, rehearse)
    temperature = fit_temperature(fit.evidence, [True] * len(gold))
    p_human = torch.sigmoid(torch.tensor(fit.evidence) / temperature).tolist()
    audited = [AuditRow(pair_id=g.pair.pair_id, source=g.pair.source, human=g.label, strength=s, spread=sd,
                        p_human=p, flagged=1 - p >= confidence)
               for g, s, sd, p in zip(gold, fit.strength, fit.spread, p_human)]
    judge_id = "scratch" if scratch else f"{prior_dir.name}@{model_fingerprint(prior_dir)}"
    store.save_audit(judge_id, audited)
    return AuditReport(judge_id=judge_id, folds=folds, confidence=confidence, temperature=temperature,
                       overall=_group(audited), by_source=_by_source(audited), rows=audited)


def _group(rows: list[AuditRow]) -> AuditGroup:
    flagged = sum(r.flagged for r in rows)
    return AuditGroup(n=len(rows), flagged=flagged, flagged_share=flagged / len(rows) if rows else 0.0,
                      negative_share=sum(r.strength < 0 for r in rows) / len(rows) if rows else 0.0)


def _by_source(rows: list[AuditRow]) -> dict[str, AuditGroup]:
    groups: dict[str, list[AuditRow]] = defaultdict(list)
    for r in rows:
        groups[r.source or "(none)"].append(r)
    return {name: _group(members) for name, members in sorted(groups.items())}
