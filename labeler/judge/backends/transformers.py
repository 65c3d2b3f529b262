"""The default backend: a local Hugging Face causal LM on the CPU (fp32), batched with left padding."""

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper
from transformers.utils import logging as hf_logging

from labeler.errors import LabelerError
from labeler.judge.backends.base import Completion, SamplingParams
from labeler.judge.default_model import check_model_dir, default_model_dir, model_fingerprint


class _ChoiceRecorder(LogitsProcessor):
    """Records log P(choice) for every generated position from the raw logits, before any warping."""

    def __init__(self, choice_ids: list[int]):
        self.choice_ids = choice_ids
        self.steps: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.steps.append(torch.log_softmax(scores.float(), dim=-1)[:, self.choice_ids].cpu())
        return scores


class TransformersBackend:
    def __init__(self, model: str | Path | None = None, batch_size: int = 8, max_sequences: int = 32, **_: object):
        self.path = Path(model) if model else None
        self.batch_size = batch_size
        self.max_sequences = max_sequences
        self.model_id = ""
        self._model = None
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

    @torch.inference_mode()
    def generate(self, prompts: list[str], n: int, params: SamplingParams,
                 choices: tuple[str, str], marker: str) -> list[list[Completion]]:
        ids = self.choice_ids(choices)
        out: list[list[Completion]] = [[] for _ in prompts]
        torch.manual_seed(params.seed)
        for batch in self._by_length(prompts, max(1, self.max_sequences // n)):
            enc = self._encode([prompts[i] for i in batch])
            recorder = _ChoiceRecorder(ids)
            warpers = [TemperatureLogitsWarper(params.temperature)] if params.temperature != 1.0 else []
            warpers += [TopPLogitsWarper(params.top_p)] if params.top_p < 1.0 else []
            config = GenerationConfig(
                do_sample=True, max_new_tokens=params.max_new_tokens, num_return_sequences=n,
                temperature=1.0, top_p=1.0, top_k=0,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self._eos(),
            )
            sequences = self.model.generate(**enc, generation_config=config, logits_processor=[recorder, *warpers])
            generated = sequences[:, enc["input_ids"].shape[1] :]
            steps = torch.stack(recorder.steps, dim=1) if recorder.steps else None  # [rows, steps, 2]
            for row in range(generated.shape[0]):
                tokens = self._trim(generated[row].tolist())
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                at = self._verdict_position(tokens, ids, marker)
                lp = None if at is None or steps is None else (float(steps[row, at, 0]), float(steps[row, at, 1]))
                out[batch[row // n]].append(Completion(text=text, verdict_logprobs=lp))
        return out

    def _eos(self) -> int | list[int]:
        return self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id

    def _trim(self, tokens: list[int]) -> list[int]:
        eos = self._eos()
        stops = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.pad_token_id}
        for i, tok in enumerate(tokens):
            if tok in stops:
                return tokens[:i]
        return tokens

    def _verdict_position(self, tokens: list[int], ids: list[int], marker: str) -> int | None:
        for j in range(len(tokens) - 1, -1, -1):
            if tokens[j] in ids and self.tokenizer.decode(tokens[max(0, j - 4) : j]).rstrip().endswith(marker):
                return j
        return None
