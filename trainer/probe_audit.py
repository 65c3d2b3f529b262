"""Cross-fitted preference strength of human-labelled pairs (`labeler audit`).

"Secrets of RLHF II" (arXiv 2401.06080) finds mislabelled pairs as those whose preference strength, measured by
reward models trained on the rest of the data, is strongly negative. Here: k folds by prompt; for each fold the
ensemble is fitted on the other folds (from scratch, or as a correction of a probe judge's heads) and scores the
fold's pairs, so no head scores a pair it was trained on. Strength is oriented to the human's choice: negative
means the heads prefer the response the human rejected.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from labeler.judge.backends.probe import ProbeHead
from trainer.config import ProbeTrainConfig


@dataclass
class CrossFit:
    strength: list[float]  # per row: the heads' mean reward difference, human's choice minus the other
    spread: list[float]  # its spread over the heads
    evidence: list[float]  # the ensemble's logit for the human's choice (strength shrunk by the spread)
    folds: int


def fold_of(prompt: str, folds: int) -> int:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) % folds


def cross_fit(better, worse, safety, prompts: list[str], cfg: ProbeTrainConfig, prior: ProbeHead | None,
              folds: int = 5, reference=None) -> CrossFit:
    """Each row scored by heads fitted without its fold (`better` = the human's choice)."""
    import torch

    from trainer.probe import fit_ensemble
    from trainer.probe_adapt import fit_correction

    fold = torch.tensor([fold_of(p, folds) for p in prompts])
    strength, spread, evidence = (torch.zeros(len(prompts)) for _ in range(3))
    for k in range(folds):
        test = fold == k
        train = ~test
        if not bool(test.any()) or not bool(train.any()):
            continue
        if prior is None:
            head = fit_ensemble(better[train], worse[train], safety[train], cfg)
        else:
            kept = [p for p, t in zip(prompts, train.tolist()) if t]
            head, _ = fit_correction(prior, better[train], worse[train], kept, cfg, reference)
        mean, sd = head.strength(better[test], worse[test])
        strength[test], spread[test], evidence[test] = mean, sd, head.evidence(mean, sd)
    return CrossFit(strength.tolist(), spread.tolist(), evidence.tolist(), folds)
