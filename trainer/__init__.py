"""Training a judge on TRL: rows in, a trained judge dir out, plus the registry of judge versions.

- `config.py`: `RetrainConfig`, `StarConfig`, `DpoTrainConfig`, `SftTrainConfig`, `BtTrainConfig` and the
  functions that map them to TRL's configs.
- `star.py`: training rows (STaR chains, rationalizations, reviewer notes; genrm-sft verdicts; BT pairs).
- `dpo.py`, `sft.py`, `bt.py`: one TRL trainer each (DPOTrainer, SFTTrainer, RewardTrainer); `common.py` loads
  the starting judge, applies LoRA, resumes from checkpoints and saves a judge dir.
- `versions.py`: the judges directory, the registry, atomic publish/promotion, `judges list/use`.

The retrain loop that drives these (split -> data -> train -> evaluate -> gate -> publish) is a pipeline stage,
`labeler.retraining`; nothing here imports a stage or the CLI (an import-linter contract in pyproject.toml).
Heavy libraries (torch, transformers, trl, peft, datasets) are imported inside functions.
"""
