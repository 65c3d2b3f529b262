"""`labeler audit` on the training set, and what training without the flagged labels does on the dev sets.

On the cached features of `probe_judge.py features --no-bf16` (../shared/data/train, all pairs): every pair's
cross-fitted strength (`trainer.probe_audit.cross_fit` from scratch, as `labeler audit --from-scratch` runs it: 5
folds by prompt, 10 bootstrap heads, the starter's recipe), a temperature fitted on the cross-fitted evidence, the
share flagged per source at several confidences and the share with a negative mean strength; then the starter's
recipe trained with the flagged labels kept, dropped, flipped or smoothed (each flagged pair's target set to the
heads' calibrated probability of the human's choice instead of 1), scored on the six dev files. Several bootstrap
seeds, because the differences are small.

    python benchmarks/audit_train.py --features F [--confidence 0.7] [--seeds 3]
"""

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SAFETY = "hh_harmless"


def main(argv=None) -> None:
    import torch

    from labeler.evaluation.calibration import fit_temperature
    from probe_judge import load
    from trainer.config import ProbeTrainConfig
    from trainer.probe import fit_ensemble
    from trainer.probe_audit import cross_fit

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--confidence", type=float, default=0.7, help="The flag used for the training variants.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--spread-weight", type=float, default=3.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    train, dev = load(args.features, "train", args.layer), load(args.features, "prefs", args.layer)
    safety = torch.tensor([s == SAFETY for s in train["source"]])
    cfg = ProbeTrainConfig(members=10, safety_sources=SAFETY, spread_weight=args.spread_weight, bf16=False)
    fit = cross_fit(train["better"], train["worse"], safety, train["prompts"], cfg, None, folds=5)
    temperature = fit_temperature(fit.evidence, [True] * len(fit.evidence))
    p_human = torch.sigmoid(torch.tensor(fit.evidence) / temperature)
    strength = torch.tensor(fit.strength)
    sources = sorted(set(train["source"]))
    src = train["source"]
    shares = {}
    for conf in (0.6, 0.7, 0.8, 0.9):
        flagged = (1 - p_human) >= conf
        shares[str(conf)] = {"all": float(flagged.float().mean()),
                             **{s: float(flagged[[x == s for x in src]].float().mean()) for s in sources}}
    negative = {"all": float((strength < 0).float().mean()),
                **{s: float((strength[[x == s for x in src]] < 0).float().mean()) for s in sources}}
    print(f"T = {temperature:.3f}; flagged shares: {json.dumps(shares, indent=1)}\nnegative strength: {negative}")
    flagged = (1 - p_human) >= args.confidence
    variants = {}
    for how in ("keep", "drop", "flip", "smooth"):
        scores = []
        for seed in range(args.seeds):
            cfg_seed = ProbeTrainConfig(members=10, safety_sources=SAFETY, spread_weight=args.spread_weight,
                                        bf16=False, seed=seed)
            better, worse, s = train["better"], train["worse"], safety
            targets = None
            if how == "drop":
                better, worse, s = better[~flagged], worse[~flagged], s[~flagged]
            elif how == "flip":
                better, worse = torch.where(flagged[:, None], worse, better), torch.where(flagged[:, None], better, worse)
            elif how == "smooth":
                targets = torch.where(flagged, p_human, torch.ones_like(p_human))
            head = fit_ensemble(better, worse, s, cfg_seed, targets=targets)
            mean, _ = head.strength(dev["better"], dev["worse"])
            right = mean > 0
            per = {x: float(right[[y == x for y in dev["source"]]].float().mean()) for x in sorted(set(dev["source"]))}
            scores.append({"pooled": float(right.float().mean()), "macro": sum(per.values()) / len(per), **per})
        variants[how] = {k: sum(sc[k] for sc in scores) / len(scores) for k in scores[0]}
        print(how, {k: round(v, 4) for k, v in variants[how].items()}, flush=True)
    result = {"temperature": temperature, "flagged_share": shares, "negative_share": negative,
              "confidence": args.confidence, "flagged_n": int(flagged.sum()), "seeds": args.seeds,
              "variants_dev": variants}
    out = args.json or ROOT / "benchmarks" / "results" / f"audit-train-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
