"""Continuing a bt-probe judge (the starter, or a version trained from it) on reviewed pairs.

From scratch, a few hundred reviewed pairs teach a linear head what is easiest to see in them (on LLMBar: "the
shorter response wins") and it forgets the rest. Here the judge's heads stay and a correction is added:

    r'(h) = r(h) + g(h) * delta . z        (z = h / scale, each member its own delta)

where the domain gate g(h) = sigmoid(u . (h - mu) / sd + c) is a logistic regression that tells the reviewed
pairs' responses from reference responses the judge was trained on (features shipped with it), so the correction
acts where the reviews come from and fades elsewhere. delta is a logistic regression whose offset is the old
judge's margin r(better) - r(worse); the fit also sees the reference pairs (rehearsal), weighted so the reviewed
pairs count `share` of the whole, and `share` is chosen by 5-fold cross-validation by prompt on the reviewed pairs
(held-out log-likelihood); when no candidate predicts the held-out reviews better than the judge as it is, the judge
is kept unchanged. Without reference pairs there is no gate and no rehearsal: only an L2 pull toward the
old heads (its strength by the same cross-validation), which lets the judge forget what the reviews do not show
(tests/test_probe_ensemble.py shows both). Each member fits its delta on its own bootstrap resample of the reviewed
pairs, so the ensemble keeps a spread where the reviews are few.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from labeler.judge.backends.probe import ProbeHead
from trainer.config import ProbeTrainConfig

SHARES = (0.25, 0.5, 0.75, 0.9)  # the reviewed pairs' share of the fit's weight, with reference pairs
KEEP = "keep"  # what `choose` returns when no correction beats the judge as it is
L2_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # the penalty, without them
FOLDS = 5
REHEARSAL_L2 = 0.01
DOMAIN_GATE_L2 = 0.01


def fit_correction(prior: ProbeHead, better, worse, prompts: list[str], cfg: ProbeTrainConfig,
                   reference=None, targets=None) -> tuple[ProbeHead, dict]:
    """The prior's heads plus one correction fitted on (better, worse) features of reviewed pairs; `reference`:
    (better, worse) features of pairs the prior was trained on. Returns the head and what was chosen."""
    import torch

    k = prior.corrections
    tensors = dict(prior.t)
    if reference is not None and len(reference[0]):
        gate = fit_domain_gate(torch.cat([better, worse]), torch.cat(reference), DOMAIN_GATE_L2)
        tensors |= {f"adapt{k}.{name}": value for name, value in gate.items()}
    else:
        reference = None
    staged = ProbeHead(tensors)  # the gate in place, delta still to fit
    y = torch.ones(len(better)) if targets is None else targets.float()
    if reference is not None:  # the reference pairs' inputs, computed once (the fits below reuse them)
        margins = staged.member_rewards(reference[0]) - staged.member_rewards(reference[1])
        reference = Rehearsal(reference, margins, _gated(staged, k, *reference))
    share, l2, scores = choose(staged, k, better, worse, prompts, reference, cfg.prior_l2, y)
    if share == KEEP:  # cross-validation: no correction predicts the held-out reviews better than the judge as it is
        return prior, {"reviewed_share": None, "prior_l2": None, "cv_loglik": scores, "kept_prior": True,
                       "reference_pairs": 0 if reference is None else len(reference.pairs[0])}
    generator = torch.Generator().manual_seed(cfg.seed)
    deltas = []
    for m in range(prior.members):
        idx = torch.randint(len(better), (len(better),), generator=generator) if prior.members > 1 else \
            torch.arange(len(better))
        deltas.append(_fit(staged, k, m, better[idx], worse[idx], reference, share, l2, y[idx]))
    tensors[f"adapt{k}.w"] = torch.stack(deltas) if prior.members > 1 else deltas[0]
    head = ProbeHead(tensors)
    gate_in = float(head.domain_gate(torch.cat([better, worse]), k).mean())
    gate_out = float(head.domain_gate(torch.cat(reference.pairs), k).mean()) if reference is not None else None
    return head, {"reviewed_share": share, "prior_l2": l2, "cv_loglik": scores,
                  "reference_pairs": 0 if reference is None else len(reference.pairs[0]),
                  "gate_reviewed": gate_in, "gate_reference": gate_out}


def fit_domain_gate(inside, outside, l2: float) -> dict:
    """A balanced logistic regression: reviewed responses (1) against reference responses (0)."""
    import torch

    from trainer.probe import fit_logistic

    both = torch.cat([inside, outside])
    label = torch.cat([torch.ones(len(inside)), torch.zeros(len(outside))])
    mu, sd = both.mean(0), both.std(0) + 1e-6
    weights = torch.where(label > 0, 1 / len(inside), 1 / len(outside))
    w = fit_logistic((both - mu) / sd, label, l2, intercept=True, weights=weights)
    return {"u": w[:-1].contiguous(), "c": w[-1:].contiguous(), "mu": mu, "sd": sd}


class Rehearsal(NamedTuple):
    """Reference pairs with what every fit needs of them, computed once."""

    pairs: tuple  # (better, worse) features
    margins: object  # members x pairs: the heads' margins without the new correction
    gated: object  # g(h_b) h_b - g(h_w) h_w


def _gated(head: ProbeHead, k: int, better, worse):
    g_b, g_w = head.domain_gate(better, k)[:, None], head.domain_gate(worse, k)[:, None]
    return g_b * better - g_w * worse


def _scale(head: ProbeHead, member: int | None):
    return head._stacked("scale").mean(0) if member is None else head._stacked("scale")[member]


def _design(head: ProbeHead, k: int, member: int | None, better, worse):
    """(x, offset): delta's inputs g(h_b) z_b - g(h_w) z_w, and the margin of the heads without correction k."""
    x = _gated(head, k, better, worse) / _scale(head, member)
    margins = head.member_rewards(better) - head.member_rewards(worse)  # correction k has no delta yet
    return x, margins.mean(0) if member is None else margins[member]


def _fit(head: ProbeHead, k: int, member: int | None, better, worse, reference, share: float | None, l2: float,
         y=None):
    import torch

    from trainer.probe import fit_logistic

    x, offset = _design(head, k, member, better, worse)
    y = torch.ones(len(x)) if y is None else y
    if reference is None or share is None:
        return fit_logistic(x, y, l2, offset=offset)
    xr = reference.gated / _scale(head, member)
    offr = reference.margins.mean(0) if member is None else reference.margins[member]
    weights = torch.cat([torch.full((len(x),), share / len(x)), torch.full((len(xr),), (1 - share) / len(xr))])
    return fit_logistic(torch.cat([x, xr]), torch.cat([y, torch.ones(len(xr))]), l2, weights=weights,
                        offset=torch.cat([offset, offr]))


def choose(head: ProbeHead, k: int, better, worse, prompts: list[str], reference, l2: float | None, y=None
           ) -> tuple[float | None, float, dict]:
    """(share, l2, held-out log-likelihood per candidate): the reviewed pairs' share with reference pairs (L2 fixed
    small), else the L2 penalty; by 5-fold CV by prompt with the members' mean. Too few prompts to fold: the most
    conservative candidate."""
    import torch

    grid = [(s, l2 or REHEARSAL_L2) for s in SHARES] if reference is not None else \
        [(None, v) for v in ([l2] if l2 else L2_GRID)]
    conservative = grid if reference is not None else list(reversed(grid))
    groups = sorted(set(prompts), key=lambda p: hashlib.sha256(p.encode()).hexdigest())
    if len(grid) == 1 or len(groups) < FOLDS:
        return (*conservative[0], {})
    fold_of = {p: i % FOLDS for i, p in enumerate(groups)}
    fold = torch.tensor([fold_of[p] for p in prompts])
    scores = {}
    y = torch.ones(len(prompts)) if y is None else y
    _, offset_all = _design(head, k, None, better, worse)
    keep = float((y * torch.nn.functional.logsigmoid(offset_all) + (1 - y) * torch.nn.functional.logsigmoid(
        -offset_all)).sum()) / len(prompts)  # the judge as it is, scored on the same pairs
    for share, penalty in grid:
        total = 0.0
        for f in range(FOLDS):
            train, test = fold != f, fold == f
            delta = _fit(head, k, None, better[train], worse[train], reference, share, penalty,
                         None if y is None else y[train])
            x, offset = _design(head, k, None, better[test], worse[test])
            z = x @ delta + offset
            total += float((y[test] * torch.nn.functional.logsigmoid(z)
                            + (1 - y[test]) * torch.nn.functional.logsigmoid(-z)).sum())
        scores[(share, penalty)] = total / len(prompts)
    best = max(scores.values())
    report = {f"{s}/{p}": v for (s, p), v in scores.items()} | {KEEP: keep}
    if best <= keep:
        return KEEP, None, report
    chosen = next(c for c in conservative if scores[c] >= best - 1e-9)
    return (*chosen, report)
