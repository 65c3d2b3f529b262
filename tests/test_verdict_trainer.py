"""genrm-sft at scale (trainer/verdict.py): one order per pair and epoch, left padding, verdict-token loss, LoRA on
the top blocks only, snapshots for learning curves; on the tiny Llama."""

import torch

from labeler.judge.backends import make_backend
from labeler.judge.judge import Judge, JudgeConfig
from schemas import GoldPair, Pair, TrainingRow
from trainer import star as star_data
from trainer import verdict
from trainer.common import StartPoint, trainable_parameters
from trainer.config import VerdictTrainConfig


def rows_for(n: int) -> list[TrainingRow]:
    return [TrainingRow(iteration=1, pair_id=f"p{i}", position=pos, kind="sft", prompt=f"{i}{pos}", chosen="A]]",
                        origin="gold") for i in range(n) for pos in ("AB", "BA")]


def test_one_order_per_pair_and_epoch_half_each_way_the_other_order_next_epoch():
    rows = rows_for(10)
    two = verdict.epoch_rows(rows, 2, seed=3)
    first, second = two[:10], two[10:]
    assert sorted(r.pair_id for r in first) == sorted(r.pair_id for r in second) == sorted({r.pair_id for r in rows})
    assert sum(r.position == "AB" for r in first) == 5
    assert all(a.pair_id == b.pair_id and a.position != b.position for a, b in zip(first, second))
    assert verdict.epoch_rows(rows, 1, seed=3) == first
    assert [r.position for r in verdict.epoch_rows(rows, 1, seed=4)] != [r.position for r in first]
    lonely = [r for r in rows if not (r.pair_id == "p0" and r.position == "AB")]  # p0 has only BA
    assert {r.position for r in verdict.epoch_rows(lonely, 2, seed=3) if r.pair_id == "p0"} == {"BA"}


def test_rows_longer_than_max_length_are_left_out_not_cut(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    rows = [TrainingRow(iteration=1, pair_id=f"p{n}", position="AB", kind="sft", prompt="word " * n, chosen="B]]",
                        origin="gold") for n in (3, 40)]
    encoded = verdict.encode_rows(rows, tokenizer, max_length=20)
    assert [len(e["input_ids"]) for e in encoded] == [len(tokenizer.encode("word " * 3, add_special_tokens=False))]
    assert encoded[0]["verdict_id"] == tokenizer.encode("B", add_special_tokens=False)[0]


def test_collator_left_pads_so_the_last_position_predicts_the_verdict():
    batch = verdict.LeftPadCollator(pad_id=0)([{"input_ids": [5, 6, 7], "verdict_id": 9, "length": 3},
                                               {"input_ids": [8], "verdict_id": 4, "length": 1}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [0, 0, 8]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 0]]
    assert batch["labels"].tolist() == [9, 4]


def gold_pairs(n: int) -> list[GoldPair]:
    return [GoldPair(pair=Pair(pair_id=f"p{i}", prompt=f"What is {i} + {i}?", response_a=f"It is {2 * i}.",
                               response_b=f"It is {2 * i + 1}."), label="AB"[i % 2], prompt_hash=f"h{i}")
            for i in range(n)]


def test_trains_lora_on_the_top_blocks_only_and_lowers_the_verdict_loss(tiny_llama, tmp_path):
    judge = Judge(make_backend("transformers", model=str(tiny_llama)), JudgeConfig())
    rows = star_data.genrm_rows(judge, gold_pairs(8))
    cfg = VerdictTrainConfig(max_steps=6, learning_rate=5e-3, train_layers=1, per_device_train_batch_size=4,
                             warmup_steps=0, save_steps=3, snapshot_pairs="8", bf16=False)
    trainer = verdict.make_trainer(StartPoint.of(tiny_llama), rows, cfg, tmp_path / "ck", quiet=True)
    before = trainable_parameters(trainer.model)
    assert before and all(".layers.1." in name and "lora_" in name for name in before)
    batch = verdict.LeftPadCollator(trainer.processing_class.pad_token_id)(list(trainer.train_dataset))

    def loss() -> float:
        with torch.no_grad():
            return float(verdict.verdict_loss(trainer.model, dict(batch)))

    start = loss()
    trainer.train()
    after = trainable_parameters(trainer.model)
    assert all(not torch.equal(before[n], after[n]) for n in before if "lora_B" in n)
    assert loss() < start
    snapshot = tmp_path / "ck" / "snapshots" / "rows-8"
    assert (snapshot / "adapter_model.safetensors").is_file() and (snapshot / "tokenizer_config.json").is_file()
    assert (tmp_path / "ck" / "checkpoint-6").is_dir()


def test_full_fine_tuning_of_the_top_blocks_freezes_everything_below(tiny_llama, tmp_path):
    judge = Judge(make_backend("transformers", model=str(tiny_llama)), JudgeConfig())
    cfg = VerdictTrainConfig(max_steps=1, full=True, train_layers=1, bf16=False)
    trainer = verdict.make_trainer(StartPoint.of(tiny_llama), star_data.genrm_rows(judge, gold_pairs(2)), cfg,
                                   tmp_path / "ck", quiet=True)
    trained = set(trainable_parameters(trainer.model))
    assert trained and all(n.startswith(("model.layers.1.", "model.norm")) for n in trained)


def test_a_batch_holds_different_pairs_and_an_epoch_every_pair_once(tiny_llama, tmp_path):
    """Many epochs of few pairs (a pair's rows share one length): the batches the Trainer really draws hold
    different pairs, and each epoch's batches cover every pair once, one order each (issue 28: transformers'
    length grouping over the whole dataset put copies of two or three pairs in each batch)."""
    judge = Judge(make_backend("transformers", model=str(tiny_llama)), JudgeConfig())
    golds = [GoldPair(pair=Pair(pair_id=f"p{i}", prompt="Count: " + "one " * i, response_a="yes " * (i + 1),
                                response_b="no " * (i + 1)), label="AB"[i % 2], prompt_hash=f"h{i}") for i in range(8)]
    rows = star_data.genrm_rows(judge, golds)
    cfg = VerdictTrainConfig(num_train_epochs=12, per_device_train_batch_size=4, bf16=False, warmup_steps=0)
    trainer = verdict.make_trainer(StartPoint.of(tiny_llama), rows, cfg, tmp_path / "ck", quiet=True)
    tok = trainer.processing_class
    which = {tuple(tok.encode(r.prompt, add_special_tokens=False)): (r.pair_id, r.position) for r in rows}
    seen = []
    for batch in trainer.get_train_dataloader():
        found = [which[tuple(x for x, m in zip(ids.tolist(), mask.tolist()) if m)]
                 for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
        assert len({pid for pid, _ in found}) == len(found)
        seen += found
    assert len(seen) == 12 * 8
    epochs = [seen[e * 8:(e + 1) * 8] for e in range(12)]
    assert all(sorted(pid for pid, _ in block) == [f"p{i}" for i in range(8)] for block in epochs)
    for pid in (f"p{i}" for i in range(8)):
        orders = [dict(block)[pid] for block in epochs]
        assert all(a != b for a, b in zip(orders, orders[1:]))  # the other order the next epoch
