"""The round trip the README promises: `labeler export --dpo` (JSONL, Parquet or a `datasets` folder) ->
`datasets.load_dataset` / `load_from_disk` -> one step of TRL's DPOTrainer and RewardTrainer on the tiny Llama,
for plain and for conversational rows. Every step must change the weights."""

import json

import datasets
import pytest
import torch

from helpers import run

datasets.disable_progress_bars()
ARGS = dict(max_steps=1, per_device_train_batch_size=2, learning_rate=1e-3, report_to=[], use_cpu=True,
            save_strategy="no", logging_steps=1, disable_tqdm=True, dataloader_pin_memory=False,
            activation_checkpointing=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Labelled stores, exported: plain rows (model labels, fake judge) and conversational ones (TRL input)."""
    tmp = tmp_path_factory.mktemp("export")
    plain = tmp / "plain.jsonl"
    plain.write_text("".join(json.dumps({"prompt": f"What is {i} + {i}?", "response_a": f"It is {2 * i}.",
                                         "response_b": f"It is {2 * i + 1}."}) + "\n" for i in range(4)))
    run("annotate", plain, "--db", tmp / "plain.duckdb", "--backend", "fake", ok=True)
    conv = [{"prompt": [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello."},
                        {"role": "user", "content": f"What is {i} + {i}?"}],
             "chosen": [{"role": "assistant", "content": f"It is {2 * i}."}],
             "rejected": [{"role": "assistant", "content": f"It is {2 * i + 1}."}]} for i in range(4)]
    datasets.Dataset.from_list(conv).to_json(tmp / "conv.jsonl")
    run("ingest", tmp / "conv.jsonl", "--db", tmp / "conv.duckdb", ok=True)
    run("export", "--db", tmp / "plain.duckdb", "--out", tmp / "plain-dpo.jsonl", "--dpo", ok=True)
    run("export", "--db", tmp / "conv.duckdb", "--out", tmp / "conv-dpo.parquet", "--dpo", "--hf", tmp / "conv-hf",
        ok=True)
    return {"plain": datasets.load_dataset("json", data_files=str(tmp / "plain-dpo.jsonl"), split="train"),
            "conversational": datasets.load_dataset("parquet", data_files=str(tmp / "conv-dpo.parquet"), split="train"),
            "folder": datasets.load_from_disk(str(tmp / "conv-hf"))}


def changed(model, before: dict) -> bool:
    return any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if p.requires_grad)


def test_the_exported_rows_are_trl_rows(exported):
    from trl.data_utils import is_conversational

    assert not is_conversational(exported["plain"][0]) and exported["plain"].num_rows == 4
    assert is_conversational(exported["conversational"][0]) and exported["conversational"].num_rows == 4
    assert exported["folder"].to_list() == exported["conversational"].to_list()


@pytest.mark.parametrize("kind", ["plain", "conversational", "folder"])
def test_dpo_trainer_takes_a_step(exported, kind, tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = DPOTrainer(model=model, args=DPOConfig(output_dir=str(tmp_path), max_length=256, **ARGS),
                         train_dataset=exported[kind], processing_class=tokenizer)
    trainer.train()
    assert changed(model, before)


@pytest.mark.parametrize("kind", ["plain", "conversational"])
def test_reward_trainer_takes_a_step(exported, kind, tiny_llama, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1,
                                                               pad_token_id=tokenizer.pad_token_id)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = RewardTrainer(model=model, args=RewardConfig(output_dir=str(tmp_path), max_length=256, **ARGS),
                            train_dataset=exported[kind], processing_class=tokenizer)
    trainer.train()
    assert changed(model, before)
