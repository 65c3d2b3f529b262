"""Bradley-Terry baseline: TRL's RewardTrainer puts a scalar head on the base model and trains it on gold pairs.

Each response is read alone as `labeler.judge.backends.reward.bt_text` (user turn + assistant response in the
chat template, EOS-terminated), the same text the `reward` backend scores at inference. With LoRA the head
(`score`) is trained in full and saved with the adapter (peft's SEQ_CLS `modules_to_save`).
"""

from __future__ import annotations

from pathlib import Path

from labeler.judge.backends.reward import bt_text
from labeler.judge.judge import JudgeConfig
from labeler.judge.prompts import shorten
from schemas import TrainingRow
from trainer.common import StartPoint, lora_config, quiet_transformers, tokenizer_for
from trainer.config import BtTrainConfig, to_reward_config

MAX_FIELD_CHARS = JudgeConfig.max_field_chars  # what the reward backend applies at inference, by default


def response_text(tokenizer, prompt: str, response: str) -> str:
    """A training row's response as the reward backend reads it at inference (fields cut as it cuts them)."""
    return bt_text(tokenizer, shorten(prompt, MAX_FIELD_CHARS), shorten(response, MAX_FIELD_CHARS))


def make_trainer(start: StartPoint, rows: list[TrainingRow], cfg: BtTrainConfig, output_dir: Path,
                 quiet: bool = False):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardTrainer

    quiet_transformers()
    tokenizer = tokenizer_for(start)
    model = AutoModelForSequenceClassification.from_pretrained(
        start.base_model, num_labels=1, dtype=torch.float32, use_safetensors=True, trust_remote_code=False,
        pad_token_id=tokenizer.pad_token_id)

    data = Dataset.from_list([{"chosen": response_text(tokenizer, r.prompt, r.chosen),
                               "rejected": response_text(tokenizer, r.prompt, r.rejected)} for r in rows])
    return RewardTrainer(model=model, args=to_reward_config(cfg, output_dir, quiet), train_dataset=data,
                         processing_class=tokenizer, peft_config=None if cfg.full else lora_config(cfg, "SEQ_CLS"))
