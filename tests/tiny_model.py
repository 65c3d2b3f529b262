"""A tiny random Llama chat model and a BPE tokenizer, built offline in about a second, for tests.

The tokenizer is byte-level BPE (GPT-2 split regex), so letters never merge with punctuation: "[[A]]" is always
"[[", "A", "]]", and "A"/"B" are single tokens. The chat template is ChatML, like Qwen's.
"""

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

BOS, EOS, PAD = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
VOCAB_SIZE = 1000
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CORPUS = """\
You are an impartial judge. You compare two AI assistant responses to the same user request and decide which one
is better: more helpful, correct, honest, harmless, and faithful to every instruction in the request.
[User request] [Response A] [Response B] Assistant A Assistant B Verdict: [[A]] Verdict: [[B]] [[A]] [[B]]
Compare the two responses step by step in a few sentences: check correctness and whether each follows the request.
Do not let the order of the responses or their length affect your judgment. Then end with your final verdict on its
own line, exactly "[[A]]" if Response A is better or "[[B]]" if Response B is better. Which response is better?
Answer with [[A]] if Response A is better or [[B]] if Response B is better. Response A is more accurate, while
Response B misses the point. Response B is clearer and more concise, so I prefer it. Both answers are polite.
The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with a single step.
What is the capital of France? The capital of France is Paris. Paris is a large city on the river Seine.
How many legs does a spider have? A spider has eight legs, while an insect such as an ant has six legs.
Write a short poem about the sea. The sea is wide and blue, the waves are cold and new, the wind sings all night.
Explain photosynthesis simply. Plants use sunlight, water and carbon dioxide to make sugar and release oxygen.
Please summarize the following text in one sentence. The report says sales grew by ten percent this year.
Translate hello into Spanish. Hola means hello. Give me three tips for better sleep: keep a regular schedule,
avoid screens before bed, and keep the bedroom dark and quiet. Thank you, that was very helpful and kind.
Can you help me fix this Python code? The function returns None because it never returns the computed value.
def add(a, b): return a + b. print(add(2, 3)) shows 5. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 2024.
The user asked for a list, but the first response gave a paragraph. The second response followed the format.
Safety matters: the assistant should refuse harmful requests and explain why, without being rude or preachy.
I think the first answer is wrong because it says the sun orbits the earth, which is false. The earth orbits
the sun once a year. The moon orbits the earth about once a month. Water boils at one hundred degrees Celsius.
Good morning! How are you today? I am fine, thanks for asking. Let us begin with a simple example and explain.
History, science, music, art, cooking, travel, health, money, sport, weather, animals, plants, books, movies.
system user assistant system user assistant. Yesterday we walked to the market and bought bread, cheese, apples
and fresh vegetables for dinner. Mathematics, physics, chemistry, biology, geography, language, computer.
"""


def _train_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=[PAD, BOS, EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random LlamaForCausalLM + tokenizer + generation config (safetensors) to out_dir; return it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    for letter in ("A", "B"):
        assert len(tokenizer.encode(letter, add_special_tokens=False)) == 1, letter
    bos, eos, pad = (tokenizer.convert_tokens_to_ids(t) for t in (BOS, EOS, PAD))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=128, max_position_embeddings=4096,
        bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):  # deterministic weights without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir
