"""The tiny offline Llama fixture loads like a hub model: chat template, batched sampling, single-token verdicts, DPO."""

import hashlib

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tiny_model import build_tiny_llama

MESSAGES = [{"role": "system", "content": "You are an impartial judge."}, {"role": "user", "content": "Which is better?"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="module")
def model(tiny_llama):
    return AutoModelForCausalLM.from_pretrained(tiny_llama, use_safetensors=True, dtype=torch.float32).eval()


def test_loads_with_special_tokens_and_generation_config(tiny_llama, tokenizer, model):
    assert (tiny_llama / "model.safetensors").is_file()
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
    assert model.config.vocab_size == len(tokenizer)
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    assert model.config.hidden_size == 64 and model.config.num_hidden_layers == 2


def test_chat_template_with_generation_prompt(tokenizer):
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are an impartial judge.<|im_end|>\n"
        "<|im_start|>user\nWhich is better?<|im_end|>\n<|im_start|>assistant\n"
    )
    no_prompt = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=False)
    assert text == no_prompt + "<|im_start|>assistant\n"


def test_verdict_letters_are_single_tokens_after_the_marker(tokenizer):
    a, b = (tokenizer.encode(c, add_special_tokens=False) for c in ("A", "B"))
    assert len(a) == 1 and len(b) == 1 and a != b
    ids = tokenizer.encode("Verdict: [[A]]", add_special_tokens=False)
    assert a[0] in ids and tokenizer.decode(ids[: ids.index(a[0])]).endswith("[[")


def test_forward_logits_are_finite(tokenizer, model):
    enc = tokenizer(tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True),
                    return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        logits = model(**enc).logits
    assert logits.shape == (1, enc["input_ids"].shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()


def test_batched_left_padded_sampling(tokenizer, model):
    tokenizer.padding_side = "left"
    prompts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
               for m in (MESSAGES[1:], MESSAGES + [{"role": "user", "content": "Explain your answer step by step."}])]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (enc["attention_mask"][0] == 0).any() and enc["attention_mask"][:, -1].all()  # left padded
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, max_new_tokens=8, num_return_sequences=3)
    width = enc["input_ids"].shape[1]
    assert out.shape[0] == 6 and width < out.shape[1] <= width + 8
    assert torch.equal(out[:3, :width], enc["input_ids"][[0, 0, 0]])


def test_build_is_deterministic_in_seed(tiny_llama, tmp_path):
    def digest(d):
        return {f: hashlib.sha256((d / f).read_bytes()).hexdigest() for f in ("model.safetensors", "tokenizer.json")}
    assert digest(build_tiny_llama(tmp_path / "same", seed=0)) == digest(tiny_llama)
    other = digest(build_tiny_llama(tmp_path / "other", seed=1))
    assert other["model.safetensors"] != digest(tiny_llama)["model.safetensors"]


def test_dpo_with_lora_updates_every_trainable_parameter(tiny_llama, tmp_path):
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, use_safetensors=True, dtype=torch.float32)
    data = Dataset.from_dict({
        "prompt": ["What is the capital of France?", "How many legs does a spider have?",
                   "Translate hello into Spanish.", "Which response is better?"],
        "chosen": [" Paris.", " Eight legs.", " Hola.", " Verdict: [[A]]"],
        "rejected": [" London, I think.", " Six.", " Bonjour.", " Verdict: [[B]]"],
    })
    args = DPOConfig(
        output_dir=str(tmp_path / "dpo"), max_length=64, bf16=False, use_cpu=True, dataloader_pin_memory=False,
        report_to=[], per_device_train_batch_size=2, max_steps=2, save_strategy="no",
        # TRL defaults that would otherwise bite on a 2-step CPU run:
        # TRL defaults gradient_checkpointing=True; transformers 5.23 renamed it, and setting the new name avoids a
        # FutureWarning from the deprecated alias. Pointless (and slower) for a 64-wide model.
        activation_checkpointing=False,
        learning_rate=1e-3,  # DPOConfig defaults to 1e-6
        logging_steps=1, disable_tqdm=True, seed=0,
    )
    peft_config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                             task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                         peft_config=peft_config)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert before and all("lora_" in n for n in before)
    result = trainer.train()
    assert trainer.state.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    after = dict(trainer.model.named_parameters())
    unchanged = [n for n, p in before.items() if torch.equal(p, after[n].detach())]
    assert not unchanged, unchanged
