"""How much the bt-probe's gate loses: the same two rewards mixed by other gates, on cached features.

The gated starter judge mixes a safety reward and a helpfulness reward by a gate that guesses, from each
response's own feature, whether the prompt is one of the safety source's (`trainer.probe.fit_head`). This refits
those rewards and scores them under other gates, all trained on ../shared/data/train only:

- `response`: the shipped form (each response mixed by its own gate value);
- `pair`: one gate value per pair (the mean of the two responses'), so a pair's margin is a mix of the two margins;
- `words`: a logistic regression on the bag of words of the prompt (words seen in at least 3 training prompts);
- `words+features`: the same words beside the pair's mean feature;
- `oracle` (dev only, the ceiling): the dev file's own source says which reward a pair needs.

Each gate is chosen the honest way, by 5-fold cross-validation by prompt on the training pairs (macro agreement
over the training sources); the dev table is printed beside it, along with how often the gate sends hh_harmless
pairs to the safety reward and hh_helpful pairs to the helpfulness reward (`hh routing`).

    python benchmarks/probe_judge.py features --split train --layers 8 --out F   # then --split prefs
    python benchmarks/probe_gates.py --out F
"""

import argparse
import collections
import json
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from probe_judge import ROOT, by_source, load, prompt_folds

SAFETY = "hh_harmless"
GATES = ("response", "pair", "words", "words+features")


def words(prompt: str) -> set[str]:
    return set(re.findall(r"[a-z']+", prompt.lower()))


def bag_of_words(fit_prompts: list[str], *others: list[str]):
    """0/1 word features of each prompt list, over the words of at least 3 of `fit_prompts`."""
    import torch

    counts = collections.Counter(w for p in fit_prompts for w in words(p))
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in counts.items() if c >= 3))}
    out = []
    for prompts in (fit_prompts, *others):
        x = torch.zeros(len(prompts), len(vocab))
        for row, p in enumerate(prompts):
            x[row, [vocab[w] for w in words(p) if w in vocab]] = 1.0
        out.append(x)
    return out


def rewards_head(fit: dict, args) -> dict:
    """The gated head's tensors (`trainer.probe.fit_head`, as `retrain --method bt-probe` fits it) on `fit`."""
    import torch

    from trainer.config import ProbeTrainConfig
    from trainer.probe import fit_head

    safety = torch.tensor([s == SAFETY for s in fit["source"]])
    cfg = ProbeTrainConfig(layers=args.layer, l2=args.l2, safety_sources=SAFETY)
    return fit_head(fit["better"], fit["worse"], safety, cfg).t


def margins(t: dict, fit: dict, test: dict, gate: str, args):
    """reward(better) - reward(worse) on `test` for the rewards of head `t` (fitted on `fit`), mixed by `gate`; and
    the gate values."""
    import torch

    from trainer.probe import fit_logistic

    safety = torch.tensor([s == SAFETY for s in fit["source"]])

    def parts(h):
        z = h / t["scale"]
        return z @ t["w_safety"], z @ t["w_help"], torch.sigmoid(((h - t["mu"]) / t["sd"]) @ t["u"] + t["c"])

    (sb, hb, gb), (sw, hw, gw) = parts(test["better"]), parts(test["worse"])
    if gate == "response":
        return gb * sb + (1 - gb) * hb - (gw * sw + (1 - gw) * hw), (gb + gw) / 2
    if gate == "oracle":
        g = torch.tensor([s == SAFETY for s in test["source"]]).float()
    elif gate == "pair":
        g = (gb + gw) / 2
    else:
        x_fit, x_test = bag_of_words(fit["prompts"], test["prompts"])
        if gate == "words+features":
            m_fit, m_test = (fit["better"] + fit["worse"]) / 2, (test["better"] + test["worse"]) / 2
            mu, sd = m_fit.mean(0), m_fit.std(0) + 1e-6
            x_fit, x_test = torch.cat([x_fit, (m_fit - mu) / sd], 1), torch.cat([x_test, (m_test - mu) / sd], 1)
        balance = torch.where(safety, 1 / safety.sum(), 1 / (~safety).sum())
        w = fit_logistic(x_fit, safety.float(), args.words_l2, intercept=True, weights=balance)
        g = torch.sigmoid(x_test @ w[:-1] + w[-1])
    return g * (sb - sw) + (1 - g) * (hb - hw), g


def rows(data: dict, idx: list[int]) -> dict:
    return {"better": data["better"][idx], "worse": data["worse"][idx],
            "source": [data["source"][i] for i in idx], "prompts": [data["prompts"][i] for i in idx]}


def table(ok: list[bool], sources: list[str]) -> dict:
    by = by_source(ok, sources)
    return {"macro": sum(v["agreement"] for v in by.values()) / len(by), "by_source": by}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("probe-features"), help="Feature folder (probe_judge.py features).")
    p.add_argument("--layer", type=int, default=8)
    p.add_argument("--l2", type=float, default=0.3, help="L2 of the two rewards (the starter's).")
    p.add_argument("--words-l2", type=float, default=3e-4, help="L2 of the word gates.")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, default=None, help="Result file (default: results/probe-gates-<time>.json).")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    train, dev = load(args.out, "train", args.layer), load(args.out, "prefs", args.layer)
    folds = prompt_folds(train["prompts"])
    # the rewards do not depend on the gate: fitted once per fold (and once on all pairs), shared by every gate
    splits = [(rows(train, [i for i, f in enumerate(folds) if f != k]), [i for i, f in enumerate(folds) if f == k])
              for k in range(5)]
    heads = [rewards_head(fit, args) for fit, _ in splits]
    everything, all_dev = rows(train, list(range(len(folds)))), rows(dev, list(range(len(dev["source"]))))
    head = rewards_head(everything, args)
    hh = [i for i, s in enumerate(dev["source"]) if s in (SAFETY, "hh_helpful")]
    result = {"layer": args.layer, "l2": args.l2, "words_l2": args.words_l2, "gates": {}}
    for gate in (*GATES, "oracle"):
        entry = {}
        if gate != "oracle":
            ok = [False] * len(folds)
            for t, (fit, held) in zip(heads, splits):
                m, _ = margins(t, fit, rows(train, held), gate, args)
                for i, right in zip(held, (m > 0).tolist()):
                    ok[i] = right
            entry["cv"] = table(ok, train["source"])
        m, g = margins(head, everything, all_dev, gate, args)
        entry["dev"] = table((m > 0).tolist(), dev["source"])
        entry["hh_routing"] = sum((g[i] > 0.5).item() == (dev["source"][i] == SAFETY) for i in hh) / len(hh)
        result["gates"][gate] = entry
        cv = f"CV macro {entry['cv']['macro']:.1%}" if "cv" in entry else "CV    -     "
        print(f"{gate:15s} {cv} | dev macro {entry['dev']['macro']:.1%}, hh routing {entry['hh_routing']:.1%} | "
              + " ".join(f"{s} {v['agreement']:.1%}" for s, v in entry["dev"]["by_source"].items()), flush=True)
    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    out = args.json or ROOT / "benchmarks" / "results" / f"probe-gates-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
