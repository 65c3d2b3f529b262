"""The default backend: a local Hugging Face causal LM on the CPU (fp32), batched with left padding."""

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from labeler.errors import LabelerError
from labeler.judge.backends.adapters import is_adapter_dir, load_adapter_model
from labeler.judge.backends.base import Completion, SamplingParams
from labeler.judge.backends.chains import Chain, ChainSampler
from labeler.judge.default_model import check_model_dir, default_model_dir, model_fingerprint

FORCE_SUFFIX = "\nVerdict: "


class TransformersBackend:
    def __init__(self, model: str | Path | None = None, batch_size: int = 8, max_sequences: int = 32, **_: object):
        self.path = Path(model) if model else None
        self.batch_size = batch_size
        self.max_sequences = max_sequences
        self.model_id = ""
        self._model = None
        self._samplers: dict = {}
        self.tokenizer = None

    def load(self) -> None:
        if self.tokenizer is not None:
            return
        hf_logging.disable_progress_bar()
        path = self.path or default_model_dir()
        check_model_dir(path)
        self.model_id = f"{path.name}@{model_fingerprint(path)}"
        self._resolved = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not self.tokenizer.chat_template:
            raise LabelerError(f"{path}: the tokenizer has no chat template; labeler needs an instruct model")

    @property
    def model(self):
        """Weights load on first use, so a run with nothing to judge never pays for them."""
        if self._model is None and is_adapter_dir(self._resolved):  # a LoRA judge version (labeler retrain)
            self._model = load_adapter_model(self._resolved).eval()
        if self._model is None:
            self._model = AutoModelForCausalLM.from_pretrained(
                self._resolved, dtype=torch.float32, use_safetensors=True, trust_remote_code=False
            ).eval()
        return self._model

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + assistant_prefix

    def choice_ids(self, choices: tuple[str, str]) -> list[int]:
        ids = [self.tokenizer.encode(c, add_special_tokens=False) for c in choices]
        if any(len(i) != 1 for i in ids):
            raise LabelerError(f"verdict choices {choices} are not single tokens for this tokenizer")
        return [i[0] for i in ids]

    def _encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)

    def _by_length(self, prompts: list[str], size: int) -> list[list[int]]:
        """Index batches of similar length, so padding wastes little compute."""
        lengths = [len(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
        return [order[i : i + size] for i in range(0, len(order), size)]

    @torch.inference_mode()
    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        ids = self.choice_ids(choices)
        out: list[tuple[float, float]] = [(0.0, 0.0)] * len(prompts)
        for batch in self._by_length(prompts, self.batch_size):
            enc = self._encode([prompts[i] for i in batch])
            position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
            logits = self.model(**enc, position_ids=position_ids, logits_to_keep=1).logits[:, -1, :]
            logprobs = torch.log_softmax(logits.float(), dim=-1)[:, ids]
            for row, i in enumerate(batch):
                out[i] = (float(logprobs[row, 0]), float(logprobs[row, 1]))
        return out

    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 choices: tuple[str, str], marker: str) -> list[list[Completion]]:
        sampler = self._sampler(choices, marker)
        encoded = [self.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
        out: list[list[Completion]] = [[] for _ in prompts]
        for number, batch in enumerate(self._by_length(prompts, max(1, self.max_sequences // n))):
            chains = sampler.sample([encoded[i] for i in batch], n, params.max_new_tokens, params.temperature,
                                    params.top_p, params.seed + number, force=params.force_verdict)
            for i, samples in zip(batch, chains):
                out[i] = [self._completion(c) for c in samples]
        return out

    def _sampler(self, choices: tuple[str, str], marker: str) -> ChainSampler:
        key = (choices, marker)
        if key not in self._samplers:
            eos = self._eos()
            eos_ids = set(eos if isinstance(eos, list) else [eos])
            self._samplers[key] = ChainSampler(self.model, self.tokenizer, self.choice_ids(choices), marker,
                                               FORCE_SUFFIX + marker, eos_ids)
        return self._samplers[key]

    def _completion(self, chain: Chain) -> Completion:
        text = self.tokenizer.decode(chain.tokens, skip_special_tokens=True)
        if chain.verdict is not None:
            text += "]]"  # sampling stops at the verdict letter; close the marker so the text reads whole
        return Completion(text=text, verdict_logprobs=chain.logprobs, forced=chain.forced)

    def _eos(self) -> int | list[int]:
        return self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
