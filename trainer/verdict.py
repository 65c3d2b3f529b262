"""genrm-sft at scale: supervised fine-tuning of the direct verdict token, on transformers' Trainer.

Each row is the direct judge prompt exactly as the judge sees it (chat template applied, ending in the assistant
prefix "Verdict: [[") and the gold letter as seen in that order. What makes it fit a 2-core CPU
(`benchmarks/train_speed.py` times each lever):

- the loss is the cross-entropy of the verdict token alone, so the output layer runs on the last position only
  (`logits_to_keep=1`; rows are left-padded, so that position is the verdict's in every row);
- LoRA only on the top `train_layers` blocks: the blocks below are frozen and need no backward pass;
- bf16 autocast on the CPU (`bf16=True`), weights and adapter kept in fp32;
- length-grouped batches (`group_by_length`), so padding wastes little;
- one presentation order per pair and epoch, drawn with the seed and balanced (half the pairs shown AB), the
  other order in the next epoch: over two epochs every pair is seen both ways, and position carries no signal.
  The dataset holds every epoch, in order, and the Trainer reads it sequentially (`schedule`): its own length
  grouping sorts rows of all epochs together, and since a pair's rows all have one length, a batch of 16 then held
  copies of two or three pairs and 64 pairs were never memorised (benchmarks/genrm_memorise.py, issue 28).

TRL's SFTTrainer computes the logits of every position for its completion loss, which is what this avoids; the
rest (checkpoints, resume, progress bar with ETA) is the Trainer's.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from schemas import TrainingRow
from trainer.common import StartPoint, load_policy, quiet_transformers, tokenizer_for
from trainer.config import VerdictTrainConfig, to_verdict_args


def epoch_rows(rows: list[TrainingRow], epochs: int, seed: int) -> list[TrainingRow]:
    """One row per pair and epoch: pair p shows order `(o_p + epoch) % 2`, where o_p splits the pairs half and
    half at random. Rows of a pair missing one order always use the order they have."""
    by_pair: dict[str, dict[str, TrainingRow]] = {}
    for row in rows:
        by_pair.setdefault(row.pair_id, {})[row.position] = row
    pairs = sorted(by_pair)
    shuffled = pairs[:]
    random.Random(seed).shuffle(shuffled)
    first = {pid: i % 2 for i, pid in enumerate(shuffled)}
    out = []
    for epoch in range(epochs):
        for pid in pairs:
            orders = by_pair[pid]
            wanted = ("AB", "BA")[(first[pid] + epoch) % 2]
            out.append(orders.get(wanted) or next(iter(orders.values())))
    return out


def schedule(epochs: list[list[dict]], batch_size: int, by_length: bool, seed: int, megabatch: int = 50) -> list[dict]:
    """The encoded rows in the order training takes them: epoch after epoch, each epoch's rows shuffled with the
    seed and, `by_length`, each run of `megabatch` batches sorted longest first (as transformers'
    LengthGroupedSampler does, but never across epochs): a batch holds different pairs, every pair once an epoch."""
    rng = random.Random(seed)
    out = []
    for block in epochs:
        block = block[:]
        rng.shuffle(block)
        if by_length:
            size = batch_size * megabatch
            block = [r for lo in range(0, len(block), size)
                     for r in sorted(block[lo:lo + size], key=lambda r: r["length"], reverse=True)]
        out += block
    return out


def encode_rows(rows: list[TrainingRow], tokenizer, max_length: int | None = None) -> list[dict]:
    """input_ids of the prompt (special-token strings inside it are already the template's own) and the id of the
    verdict letter that follows it. Prompts longer than `max_length` tokens are left out (cutting one would change
    what the judge is asked)."""
    out = []
    for row in rows:
        letter = row.chosen[0]
        verdict = tokenizer.encode(letter, add_special_tokens=False)
        if len(verdict) != 1:
            raise ValueError(f"verdict letter {letter!r} is not a single token for this tokenizer")
        ids = tokenizer.encode(row.prompt, add_special_tokens=False)
        if max_length is None or len(ids) < max_length:
            out.append({"input_ids": ids, "verdict_id": verdict[0], "length": len(ids)})
    return out


class LeftPadCollator:
    """Left-pads a batch so that the last position of every row is the one that predicts the verdict."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, width - n:] = torch.tensor(f["input_ids"])
            mask[i, width - n:] = 1
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                "labels": torch.tensor([f["verdict_id"] for f in features])}


def verdict_loss(model, inputs, return_outputs=False):
    import torch.nn.functional as F

    labels = inputs.pop("labels")
    outputs = model(**inputs, logits_to_keep=1)
    loss = F.cross_entropy(outputs.logits[:, -1].float(), labels)
    return (loss, outputs) if return_outputs else loss


def top_layer_lora(model, cfg: VerdictTrainConfig):
    """A LoRA config on the linear layers of the top `cfg.train_layers` blocks (all blocks when 0)."""
    import torch
    from peft import LoraConfig

    n_layers = model.config.num_hidden_layers
    first = max(0, n_layers - cfg.train_layers) if cfg.train_layers else 0
    names = cfg.target_modules()
    if names == "all-linear":
        block = model.get_decoder().layers[0]
        names = sorted({n.rsplit(".", 1)[-1] for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)})
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=names,
                      layers_to_transform=list(range(first, n_layers)), task_type="CAUSAL_LM")


def make_trainer(start: StartPoint, rows: list[TrainingRow], cfg: VerdictTrainConfig, output_dir: Path,
                 quiet: bool = False, callbacks: list | None = None):
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import Trainer

    quiet_transformers()
    tokenizer = tokenizer_for(start)
    model = load_policy(start, cfg)
    if not cfg.full and start.adapter is None:
        model = get_peft_model(model, top_layer_lora(model, cfg))
    elif cfg.full and cfg.train_layers:
        freeze_below(model, model.config.num_hidden_layers - cfg.train_layers)
    epochs = max(1, math.ceil(cfg.num_train_epochs))
    per_epoch = len({r.pair_id for r in rows})
    ordered = epoch_rows(rows, epochs, cfg.seed)
    blocks = [encode_rows(ordered[e * per_epoch:(e + 1) * per_epoch], tokenizer, cfg.max_length) for e in range(epochs)]
    data = Dataset.from_list(schedule(blocks, cfg.per_device_train_batch_size, cfg.group_by_length, cfg.seed))

    class VerdictTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return verdict_loss(model, inputs, return_outputs)

    args = to_verdict_args(cfg, output_dir, quiet, epochs)
    if cfg.snapshots():
        rows_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
        snapshots = snapshot_callback(cfg.snapshots(), rows_per_step, Path(output_dir) / "snapshots", tokenizer)
        callbacks = [*(callbacks or []), snapshots]
    return VerdictTrainer(model=model, args=args, train_dataset=data, data_collator=LeftPadCollator(tokenizer.pad_token_id),
                          processing_class=tokenizer, callbacks=callbacks)


def snapshot_callback(counts: list[int], rows_per_step: int, root: Path, tokenizer):
    """A TrainerCallback that saves the model (adapter) and tokenizer in `root/rows-N` at the step where training
    has seen N rows, for each N: a judge dir `--model` takes, for learning curves from one run."""
    from transformers import TrainerCallback

    from labeler.paths import atomic_path

    class Snapshots(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen = state.global_step * rows_per_step
            for n in counts:
                target = root / f"rows-{n}"
                if seen - rows_per_step < n <= seen and not target.exists():
                    root.mkdir(parents=True, exist_ok=True)
                    with atomic_path(target) as tmp:
                        model.save_pretrained(str(tmp))
                        tokenizer.save_pretrained(str(tmp))

    return Snapshots()


def freeze_below(model, first_trained: int) -> None:
    """Full fine-tuning of the top blocks only: everything below block `first_trained` (embeddings included)."""
    keep = tuple(f"model.layers.{i}." for i in range(first_trained, model.config.num_hidden_layers))
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(keep) or name.startswith("model.norm")
