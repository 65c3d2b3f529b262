"""`labeler retrain`: train a new judge version on human (gold) labels and promote it behind a held-out gate.

- `config.py`: `RetrainConfig`, `StarConfig`, `DpoTrainConfig`, `SftTrainConfig`, `BtTrainConfig` and the
  functions that map them to TRL's configs.
- `star.py`: training rows (STaR chains, rationalizations, reviewer notes; genrm-sft verdicts; BT pairs).
- `dpo.py`, `sft.py`, `bt.py`: one TRL trainer each (DPOTrainer, SFTTrainer, RewardTrainer); `common.py` loads
  the starting judge, applies LoRA, resumes from checkpoints and saves a judge dir.
- `versions.py`: the judges directory, the registry, atomic publish/promotion, `judges list/use`.
- `retrain.py`: the loop (split -> data -> train -> evaluate -> gate -> publish), resumable.

Heavy libraries (torch, transformers, trl, peft, datasets) are imported inside functions.
"""
