"""trainer/: configs, the held-out split, STaR row building (fake backend) and each TRL trainer on the tiny Llama."""

import pytest
import torch

from labeler.judge.backends import Completion, make_backend
from labeler.judge.backends.fake import FakeBackend
from labeler.judge.judge import Judge
from labeler.judge.parse import parse_verdict
from schemas import GoldPair, Pair, Sample, TrainingRow
from trainer import bt, dpo, sft
from trainer import star as star_data
from trainer.common import StartPoint, train_and_save, trainable_parameters
from trainer.config import (BtTrainConfig, DpoTrainConfig, RetrainConfig, SftTrainConfig, StarConfig, build_configs,
                            to_dpo_config)
from labeler.retraining import assign_split


def gold(i: int, label: str = "A", prompt: str | None = None, notes=()) -> GoldPair:
    pair = Pair(pair_id=f"p{i}", prompt=prompt or f"What is {i} + {i}?", response_a=f"It is {2 * i}.",
                response_b=f"It is {2 * i + 1}.")
    return GoldPair(pair=pair, label=label, prompt_hash=f"h-{prompt or i}", notes=list(notes))


# ---- configs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, kwargs, match", [
    (RetrainConfig, {"method": "ppo"}, "method must be one of"),
    (RetrainConfig, {"method": "bt", "iterations": 2}, "iterations=2 needs a star-"),
    (RetrainConfig, {"heldout_fraction": 1.0}, "heldout_fraction must be in"),
    (StarConfig, {"samples": 0}, "samples must be >= 1"),
    (StarConfig, {"top_p": 0.0}, "top_p"),
    (DpoTrainConfig, {"beta": 0.0}, "beta must be > 0"),
    (SftTrainConfig, {"lora_target_modules": "q_proj,lm_head"}, "lm_head"),
    (BtTrainConfig, {"num_train_epochs": 0, "max_steps": -1}, "num_train_epochs"),
])
def test_post_init_rejects_bad_values_quoting_them(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_defaults_and_mapping_to_trl(tmp_path):
    assert DpoTrainConfig().learning_rate == 5e-5 and DpoTrainConfig(full=True).learning_rate == 1e-6
    assert SftTrainConfig().learning_rate == 1e-4 and RetrainConfig(method="genrm-sft").mode == "direct"
    args = to_dpo_config(DpoTrainConfig(max_steps=3), tmp_path, quiet=True)
    assert (args.bf16, args.use_cpu, args.dataloader_pin_memory, args.report_to) == (False, True, False, [])
    assert args.activation_checkpointing is False and args.learning_rate == 5e-5 and args.max_length == 2048
    retrain, star, train = build_configs({"retrain": {"method": "star-sft"}, "star": {"samples": 2},
                                          "train": {"max_steps": 3, "learning_rate": None}})
    assert (retrain.method, star.samples, type(train), train.max_steps) == ("star-sft", 2, SftTrainConfig, 3)
    with pytest.raises(ValueError, match="unknown train option"):
        build_configs({"train": {"beta": 0.2}, "retrain": {"method": "bt"}})


def test_device_maps_to_cpu_fp32_or_cuda_bf16_autocast(tmp_path, monkeypatch):
    import torch

    from labeler.errors import LabelerError
    from trainer.config import _trl_common

    for device in ("auto", "cpu"):  # no GPU here: auto is the CPU, as before devices existed
        common = _trl_common(SftTrainConfig(device=device), tmp_path, quiet=True)
        assert (common["use_cpu"], common["bf16"], common["fp16"]) == (True, False, False)
    with pytest.raises(LabelerError, match="--device cuda: CUDA is not available"):
        _trl_common(SftTrainConfig(device="cuda"), tmp_path, quiet=True)
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:0"):
        SftTrainConfig(device="cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for device in ("auto", "cuda", "cuda:0"):  # a GPU: bf16 autocast over fp32 weights, off the CPU
        common = _trl_common(DpoTrainConfig(device=device), tmp_path, quiet=True)
        assert (common["use_cpu"], common["bf16"], common["fp16"]) == (False, True, False)


# ---- held-out split --------------------------------------------------------------------------------------------
def test_split_is_by_prompt_seeded_and_never_reassigned():
    pairs = [gold(i, prompt=f"q{i % 5}") for i in range(20)]  # 5 prompts, 4 pairs each
    first = assign_split(pairs, 0.4, seed=7)
    assert first == assign_split(pairs, 0.4, seed=7)
    by_prompt = {}
    for pid, split, ph in first:
        by_prompt.setdefault(ph, set()).add(split)
    assert all(len(s) == 1 for s in by_prompt.values())
    assert sum(s == {"heldout"} for s in by_prompt.values()) == 2
    stored = {pid: split for pid, split, _ in first}
    for g in pairs:
        g.split = stored[g.pair.pair_id]
    newcomers = [gold(100, prompt="q0"), gold(101, prompt="brand new")]
    again = assign_split(pairs + newcomers, 0.4, seed=7)
    assert [pid for pid, _, _ in again] == ["p100", "p101"]  # old pairs keep their split
    assert dict((p, s) for p, s, _ in again)["p100"] == stored["p0"]  # same prompt, same split


def test_split_keeps_one_prompt_on_each_side():
    assert {s for _, s, _ in assign_split([gold(0), gold(1)], 0.01, 0)} == {"train", "heldout"}
    assert {s for _, s, _ in assign_split([gold(0), gold(1)], 0.99, 0)} == {"train", "heldout"}


# ---- STaR rows (fake backend: deterministic, no model) -----------------------------------------------------------
class JustifyingBackend(FakeBackend):
    """Fake chains, except that every generation is a justification without a verdict marker."""

    def generate(self, prompts, n, params, choices, marker, seeds=None):
        assert params.force_verdict is False  # a rationalization must never get a verdict read from the logits
        return [[Completion(text=f"Justification {i}: it follows the request.") for i in range(n)] for _ in prompts]


@pytest.fixture(scope="module")
def fake_judge():
    return Judge(JustifyingBackend(), star_data.cot_config(StarConfig(samples=3)))


def chain(g: GoldPair, position: str, idx: int, verdict: str | None) -> Sample:
    shown = verdict if position == "AB" or verdict is None else star_data.SWAP[verdict]
    text = f"chain {idx} for {position}" + (f"\n[[{shown}]]" if shown else "")
    return Sample(pair_id=g.pair.pair_id, judge_key="k", position=position, sample_idx=idx, text=text, verdict=verdict)


def test_star_dpo_rows_pair_correct_with_wrong_chains_in_both_orders(fake_judge):
    g = gold(1, label="B", notes=["B is right: 3 is 2 + 1, the sum is 2."])
    samples = {"p1": [chain(g, "AB", 0, "B"), chain(g, "AB", 1, "A"), chain(g, "AB", 2, "A"),
                      chain(g, "BA", 0, "A"), chain(g, "BA", 1, None), chain(g, "BA", 2, "A")]}
    rows, stats = star_data.star_rows(fake_judge, [g], samples, StarConfig(samples=3, max_pairs_per_order=2),
                                      "star-dpo", 1, 8)
    assert (stats.correct_chains, stats.wrong_chains, stats.notes_used) == (1, 5, 1)
    assert stats.orders_rationalized == 1  # BA had no correct chain
    by_pos = {p: [r for r in rows if r.position == p] for p in ("AB", "BA")}
    assert len(by_pos["AB"]) == 2 and len(by_pos["BA"]) >= 1
    for r in rows:
        assert r.kind == "dpo" and r.rejected and r.chosen != r.rejected
        wanted = star_data.seen("B", r.position)
        assert parse_verdict(r.chosen) == wanted and parse_verdict(r.rejected) != wanted
        assert "expert" not in r.prompt and "has already decided" not in r.prompt  # no hint in the training prompt
        assert r.prompt == star_data.cot_prompt(fake_judge, g, r.position)
    assert {r.origin for r in by_pos["AB"]} == {"sample", "note"}
    assert {r.origin for r in by_pos["BA"]} == {"rationalization"}
    assert by_pos["BA"][0].chosen == "Justification 0: it follows the request.\n[[A]]"  # gold B, shown as A


def test_star_sft_and_genrm_and_bt_rows(fake_judge):
    g = gold(2, label="A")
    samples = {"p2": [chain(g, "AB", 0, "A"), chain(g, "BA", 0, "A"), chain(g, "BA", 1, "B")]}
    rows, _ = star_data.star_rows(fake_judge, [g], samples, StarConfig(samples=2), "star-sft", 1, 8)
    assert [(r.position, r.kind, r.rejected) for r in rows] == [("AB", "sft", None), ("BA", "sft", None)]
    direct = star_data.genrm_rows(fake_judge, [g])
    assert [(r.position, r.chosen) for r in direct] == [("AB", "A]]"), ("BA", "B]]")]
    assert all(r.prompt.endswith("Verdict: [[") for r in direct)
    (row,) = star_data.bt_rows([g])
    assert (row.prompt, row.chosen, row.rejected) == (g.pair.prompt, "It is 4.", "It is 5.")


def test_rationalization_prompt_has_the_hint_and_finish_chain():
    judge = Judge(make_backend("fake"), star_data.cot_config(StarConfig()))
    g = gold(3, label="A")
    assert "Response B is better" in star_data.rationalize_prompt(judge, g, "BA")  # A shown second = B
    assert star_data.finish_chain("because it is right [[A]]", "A") == "because it is right [[A]]"
    assert star_data.finish_chain("because it is right", "A") == "because it is right\n[[A]]"
    assert star_data.finish_chain("no, [[B]]", "A") is None


# ---- trainers on the tiny Llama: every trainable parameter must change ----------------------------------------
ROWS = [TrainingRow(iteration=1, pair_id=f"p{i}", position="AB", kind="dpo",
                    prompt=f"<|im_start|>user\nWhich answer to {i} + {i} is right?<|im_end|>\n<|im_start|>assistant\n",
                    chosen=f"Response A says {2 * i}, which is right.\n[[A]]",
                    rejected=f"Response B says {2 * i + 1}.\n[[B]]", origin="sample") for i in range(4)]


@pytest.mark.parametrize("module, cfg", [
    (dpo, DpoTrainConfig(max_steps=3, learning_rate=1e-2, save_steps=100)),
    (dpo, DpoTrainConfig(max_steps=2, learning_rate=1e-3, save_steps=100, full=True)),
    (sft, SftTrainConfig(max_steps=3, learning_rate=1e-2, save_steps=100)),
    (bt, BtTrainConfig(max_steps=3, learning_rate=1e-2, save_steps=100)),
], ids=["dpo-lora", "dpo-full", "sft-lora", "bt-lora"])
def test_training_changes_every_trainable_parameter(tiny_llama, tmp_path, module, cfg):
    start = StartPoint.of(tiny_llama)
    rows = ROWS if module is not sft else [r.model_copy(update={"kind": "sft", "rejected": None}) for r in ROWS]
    trainer = module.make_trainer(start, rows, cfg, tmp_path / "ckpt", quiet=True)
    before = trainable_parameters(trainer.model)
    assert before and (cfg.full or all("lora" in n or "score" in n for n in before))
    metrics = train_and_save(trainer, tmp_path / "ckpt", tmp_path / "model", trainer.processing_class,
                             start.base_model)
    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert not unchanged, unchanged
    assert metrics["steps"] == cfg.max_steps
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert ("model.safetensors" in files) if cfg.full else {"adapter_model.safetensors", "adapter_config.json"} <= files
    assert "tokenizer.json" in files and not any(f.endswith((".bin", ".pt")) for f in files)
