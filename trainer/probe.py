"""bt-probe: a Bradley-Terry judge whose base model stays frozen (`labeler.judge.backends.probe`).

Training is two steps. Features: every response of every row is read once by the base model's first `layers`
blocks (forward only, bf16 autocast), `chunk_pairs` rows at a time, each chunk saved to `<work>/features/` as it
finishes, so a killed run resumes after its last chunk. Head: logistic regressions on the feature differences
h_better - h_worse (no intercept: swapping the responses flips the prediction), L2-regularised on standardised
features, solved by L-BFGS in seconds. With `safety_sources`, the rows of those sources train a safety reward, the
others a helpfulness reward, and a logistic gate on each response's own (standardised) feature learns which
sources' prompts it answers; the judge's reward mixes the two by the gate. Each row counts in one order only: the
model is antisymmetric in the two responses, so position carries no signal by construction.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from labeler.errors import LabelerError
from labeler.judge.backends.probe import CONFIG, ProbeHead, features, load_trunk
from labeler.judge.backends.starter import REFERENCE, TOKENIZER_FILES
from labeler.paths import atomic_path
from schemas import TrainingRow
from trainer.bt import response_text
from trainer.common import StartPoint, quiet_transformers, tokenizer_for
from trainer.config import ProbeTrainConfig


def fit_logistic(x, y, l2: float, intercept: bool = False, weights=None, offset=None):
    """argmin weighted mean BCE(x @ w [+ b] [+ offset], y) + l2 * |w|^2 (the intercept is not penalised); returns w
    (and b last). `weights` (per row) sum to anything; they are normalised. `offset` (per row): a fixed logit the
    fit corrects (a prior judge's margin)."""
    import torch

    w = torch.zeros(x.shape[1] + int(intercept), requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

    def logits():
        return x @ w[: x.shape[1]] + (w[-1] if intercept else 0.0) + (0.0 if offset is None else offset)

    def closure():
        opt.zero_grad()
        per_row = torch.nn.functional.binary_cross_entropy_with_logits(logits(), y, reduction="none")
        loss = per_row.mean() if weights is None else (per_row * weights).sum() / weights.sum()
        loss = loss + l2 * (w[: x.shape[1]] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def fit_head(better, worse, safety, cfg: ProbeTrainConfig, targets=None) -> ProbeHead:
    """The reward head on features of the better and worse responses (`safety`: bool per row; `targets`: the
    probability that `better` is better, per row, 1 unless smoothed)."""
    import torch

    diff = better - worse
    scale = diff.pow(2).mean(0).sqrt() + 1e-6  # the spread of h_A - h_B whichever response is A
    x = diff / scale  # P(better wins) = sigmoid(w . x); no intercept, so P(worse) = 1 - P
    y = torch.ones(len(diff)) if targets is None else targets.float()
    if not cfg.safety_sources or bool(safety.all()) or not bool(safety.any()):
        return ProbeHead({"scale": scale, "w_help": fit_logistic(x, y, cfg.l2)})
    both, is_safety = torch.cat([better, worse]), torch.cat([safety, safety])
    mu, sd = both.mean(0), both.std(0) + 1e-6
    # both groups weigh the same, so the gate routes by what a prompt is, not by which kind was trained on more
    balance = torch.where(is_safety, 1 / is_safety.sum(), 1 / (~is_safety).sum())
    gate = fit_logistic((both - mu) / sd, is_safety.float(), cfg.gate_l2, intercept=True, weights=balance)
    return ProbeHead({"scale": scale, "w_help": fit_logistic(x[~safety], y[~safety], cfg.l2),
                      "w_safety": fit_logistic(x[safety], y[safety], cfg.l2), "mu": mu, "sd": sd,
                      "u": gate[:-1].contiguous(), "c": gate[-1:].contiguous()})


def fit_ensemble(better, worse, safety, cfg: ProbeTrainConfig, targets=None) -> ProbeHead:
    """`cfg.members` heads, each on a bootstrap resample of the rows (seeded), stacked (ProbeHead.stack)."""
    import torch

    if cfg.members == 1:
        return fit_head(better, worse, safety, cfg, targets)
    generator = torch.Generator().manual_seed(cfg.seed)
    heads = []
    for _ in range(cfg.members):
        idx = torch.randint(len(better), (len(better),), generator=generator)
        heads.append(fit_head(better[idx], worse[idx], safety[idx], cfg, None if targets is None else targets[idx]))
    if len({h.gated for h in heads}) > 1:  # a resample without one kind of pair: every member one reward
        return fit_ensemble(better, worse, torch.zeros_like(safety), cfg, targets)
    return ProbeHead.stack(heads, cfg.spread_weight)


def row_features(start: StartPoint, rows: list[TrainingRow], cfg: ProbeTrainConfig, work: Path, progress=None):
    """(better, worse) features of every row, computed chunk by chunk (kept in `work`, resumed after a kill)."""
    import torch

    from labeler.judge.backends.devices import resolve_device

    tokenizer = tokenizer_for(start)
    trunk = None
    work.mkdir(parents=True, exist_ok=True)
    parts = []
    bar = progress(len(rows), f"bt-probe: features after {cfg.layers} blocks") if progress else nullcontext(_ignore)
    with bar as advance:
        for lo in range(0, len(rows), cfg.chunk_pairs):
            chunk = rows[lo : lo + cfg.chunk_pairs]
            target = work / f"rows-{lo:07d}-{lo + len(chunk):07d}.pt"
            if target.is_file():
                parts.append(torch.load(target))
                advance(len(chunk))
                continue
            if trunk is None:
                trunk = load_trunk(start.base_model, cfg.layers, resolve_device(cfg.device))
            texts = [response_text(tokenizer, r.prompt, t) for r in chunk for t in (r.chosen, r.rejected)]
            h = features(trunk, tokenizer, texts, cfg.max_tokens, cfg.batch_size, cfg.bf16,
                         on_batch=lambda n: advance(n / 2))
            part = {"better": h[0::2].clone(), "worse": h[1::2].clone()}
            with atomic_path(target) as tmp:
                torch.save(part, tmp)
            parts.append(part)
    return torch.cat([p["better"] for p in parts]), torch.cat([p["worse"] for p in parts])


def train(start: StartPoint, rows: list[TrainingRow], cfg: ProbeTrainConfig, itdir: Path, progress=None,
          prior: Path | None = None) -> dict:
    """Features, head, and the judge dir `<itdir>/model` (probe_config.json, the head, the tokenizer). With `prior`
    (a probe judge dir) its heads are kept and corrected (trainer/probe_adapt.py), on features read as it reads
    them (its layers, token limit and dtype)."""
    import torch

    from labeler.judge.backends.probe import read_config
    from trainer.probe_adapt import fit_correction

    quiet_transformers()
    if prior is not None:
        kept = read_config(prior)
        cfg = replace(cfg, layers=int(kept["layers"]), max_tokens=int(kept["max_tokens"]),
                      bf16=bool(kept.get("bf16", True)), safety_sources=",".join(kept.get("safety_sources", [])))
    wanted = cfg.safety_set()
    safety = torch.tensor([r.source in wanted for r in rows])
    if wanted and not bool(safety.any()) and prior is None:
        known = sorted({r.source for r in rows if r.source})
        raise LabelerError(f"--safety-sources {','.join(sorted(wanted))}: no training pair has that source "
                           f"(sources: {', '.join(known) or 'none'})")
    started = time.perf_counter()
    resumed = (itdir / "features").is_dir() and any((itdir / "features").iterdir())
    better, worse = row_features(start, rows, cfg, itdir / "features", progress)
    feature_s = time.perf_counter() - started
    targets = torch.tensor([r.target for r in rows]) if any(r.target != 1.0 for r in rows) else None
    extra = {}
    if prior is not None:
        old = ProbeHead.load(prior)
        reference = read_reference(prior)
        rehearse = None if reference is None else (reference["better"][~reference["heldout"]],
                                                    reference["worse"][~reference["heldout"]])
        head, extra = fit_correction(old, better, worse, [r.prompt for r in rows], cfg, rehearse, targets)
        if reference is not None and bool(reference["heldout"].any()):
            held = (reference["better"][reference["heldout"]], reference["worse"][reference["heldout"]])
            extra["reference_agreement"] = agreement(head, *held)
            extra["reference_agreement_before"] = agreement(old, *held)
    else:
        head = fit_ensemble(better, worse, safety, cfg, targets)
    mean, _ = head.strength(better, worse)
    model_dir = itdir / "model"
    with atomic_path(model_dir) as tmp:
        tmp.mkdir()
        head.save(tmp)
        config = {"base_model_name_or_path": str(start.base_model), "layers": cfg.layers, "max_tokens": cfg.max_tokens,
                  "bf16": cfg.bf16, "safety_sources": sorted(wanted), "hidden_size": int(better.shape[1]),
                  "members": head.members, "continues": str(prior) if prior else None}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        if prior is not None and (prior / REFERENCE).is_file():  # so a later retrain rehearses them too
            (tmp / REFERENCE).write_bytes((prior / REFERENCE).read_bytes())
        for name in TOKENIZER_FILES:  # so the dir reads as a judge (its tokenizer is the base's)
            if (start.base_model / name).is_file():
                (tmp / name).write_bytes((start.base_model / name).read_bytes())
    return {"train_agreement": float((mean > 0).float().mean()), "rows": len(rows),
            "safety_rows": int(safety.sum()), "gated": head.gated, "members": head.members,
            "feature_seconds": feature_s, "seconds": time.perf_counter() - started,
            "resumed_from": "features" if resumed else None, **extra}


def read_reference(judge_dir: Path) -> dict | None:
    """A probe judge's reference features (float32): better, worse and heldout per pair; None when it has none."""
    file = Path(judge_dir) / REFERENCE
    if not file.is_file():
        return None
    from safetensors.torch import load_file

    tensors = load_file(str(file))
    return {"better": tensors["better"].float(), "worse": tensors["worse"].float(), "heldout": tensors["heldout"].bool()}


def agreement(head: ProbeHead, better, worse) -> float:
    """Share of pairs whose better response the head scores higher."""
    mean, _ = head.strength(better, worse)
    return float((mean > 0).float().mean())


def _ignore(n: float) -> None:
    pass
