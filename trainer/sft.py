"""star-sft (SFT on correct chains) and genrm-sft (SFT on the direct verdict token): TRL's SFTTrainer.

Prompt-completion rows, loss on the completion only; `prompt` is the inference text (chat template applied,
for genrm-sft ending in the assistant prefix "Verdict: [["), the completion is the chain or "X]]".
"""

from __future__ import annotations

from pathlib import Path

from schemas import TrainingRow
from trainer.common import StartPoint, load_policy, lora_config, quiet_transformers, tokenizer_for
from trainer.config import SftTrainConfig, to_sft_config


def make_trainer(start: StartPoint, rows: list[TrainingRow], cfg: SftTrainConfig, output_dir: Path,
                 quiet: bool = False):
    from datasets import Dataset
    from trl import SFTTrainer

    quiet_transformers()
    tokenizer = tokenizer_for(start)
    model = load_policy(start, cfg)
    data = Dataset.from_list([{"prompt": r.prompt, "completion": r.chosen} for r in rows])
    fresh_lora = not cfg.full and start.adapter is None
    return SFTTrainer(model=model, args=to_sft_config(cfg, output_dir, quiet), train_dataset=data,
                      processing_class=tokenizer, peft_config=lora_config(cfg) if fresh_lora else None)
