"""STaR-DPO: TRL's DPOTrainer on (prompt, correct chain, incorrect chain) rows.

Rows use TRL's standard string format: `prompt` is exactly the text the judge sees at inference (the chat
template with the generation prompt, already applied), `chosen` / `rejected` are completions; TRL appends
the EOS token, which is where sampling stops too. With LoRA the reference model is the starting judge: the
adapter disabled for a fresh adapter, a frozen copy of it when continuing a LoRA version.
"""

from __future__ import annotations

import copy
from pathlib import Path

from schemas import TrainingRow
from trainer.common import StartPoint, load_policy, lora_config, quiet_transformers, tokenizer_for
from trainer.config import DpoTrainConfig, to_dpo_config


def make_trainer(start: StartPoint, rows: list[TrainingRow], cfg: DpoTrainConfig, output_dir: Path,
                 quiet: bool = False):
    from datasets import Dataset
    from trl import DPOTrainer

    quiet_transformers()
    tokenizer = tokenizer_for(start)
    model = load_policy(start, cfg)
    data = Dataset.from_list([{"prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected} for r in rows])
    fresh_lora = not cfg.full and start.adapter is None
    ref_model = copy.deepcopy(model).eval() if cfg.full else None  # full: the reference is the start, frozen
    return DPOTrainer(model=model, ref_model=ref_model, args=to_dpo_config(cfg, output_dir, quiet),
                      train_dataset=data, processing_class=tokenizer,
                      peft_config=lora_config(cfg) if fresh_lora else None)
