"""A Bradley-Terry judge (`labeler retrain --method bt` or `bt-probe`): a scalar reward scores each response alone.

Direct mode only: for the order (first, second) it returns log sigmoid(r_first - r_second) and
log sigmoid(r_second - r_first), so the judge's pooled P(A) is sigmoid(r_A - r_B) (the same in both orders).
`labeler.judge.reward.RewardJudge` feeds it the pair itself instead of the GenRM prompt. A `bt` version is a
sequence-classification model (or its LoRA adapter); a `bt-probe` version a head on a cut base (`probe.py`).
"""

import json
from pathlib import Path
from typing import NamedTuple

from labeler.errors import LabelerError
from labeler.judge.backends.base import defuse_special_tokens
from labeler.judge.prompts import shorten
from schemas import Pair


class Strength(NamedTuple):
    """A pair as one order of a reward judge read it: each response's reward (the members' mean), the mean reward
    difference first - second, and its spread (standard deviation) over the ensemble's members."""

    reward_first: float
    reward_second: float
    mean: float
    spread: float
    members: int


def bt_text(tokenizer, prompt: str, response: str) -> str:
    """What the reward model reads, in training (TRL RewardTrainer rows) and at inference: the user turn and
    the assistant's response in the chat template, ending with the EOS token."""
    messages = [{"role": "user", "content": defuse_special_tokens(tokenizer, prompt)},
                {"role": "assistant", "content": defuse_special_tokens(tokenizer, response)}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return text if text.endswith(tokenizer.eos_token) else text + tokenizer.eos_token


class RewardBackend:
    # A bt-probe's feature batches stay `batch_size` texts on the CPU too: closing them at batching.CPU_ROWS tokens
    # measured 1.10-1.18x the pairs/s, but the bf16 features of other batch shapes moved the shipped starter's dev
    # figures (53.1 -> 53.3 %, ECE with its temperature 0.051 -> 0.055), which were measured in these batches.
    cpu_rows: float | None = None

    def __init__(self, model: str | Path | None = None, batch_size: int = 8, device: str | None = "auto",
                 dtype: str | None = None, **_: object):
        from labeler.judge.backends.devices import resolve_device, resolve_dtype

        if not model:
            raise LabelerError("the reward backend needs a Bradley-Terry judge version (labeler retrain --method bt)")
        self.path = Path(model)
        self.batch_size = batch_size
        self.device = resolve_device(device)  # the weights' dtype follows it (bf16 on CUDA) unless given
        self.dtype = resolve_dtype(dtype, self.device)
        self.model_id = ""
        self._model = None
        self._probe = False  # a bt-probe version (load() decides)
        self.tokenizer = None
        self.strengths: dict[str, Strength] = {}  # what verdict_logprobs last read per prompt (RewardJudge pops)

    def load(self) -> None:
        if self.tokenizer is not None:
            return
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        from labeler.judge.backends.models import check_model_dir, model_fingerprint
        from labeler.judge.backends.probe import is_probe_dir, probe_base

        hf_logging.disable_progress_bar()
        check_model_dir(self.path)
        self.model_id = f"{self.path.name}@{model_fingerprint(self.path)}"
        self._probe = is_probe_dir(self.path)
        tokenizer_dir = probe_base(self.path) if self._probe else self.path
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=False)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"

    @property
    def model(self):
        if self._model is None and self._probe:
            from labeler.judge.backends.probe import ProbeHead, load_trunk, probe_base, read_config

            config = read_config(self.path)
            self._probe_config, self._head = config, ProbeHead.load(self.path)
            self._model = load_trunk(probe_base(self.path), int(config["layers"]), self.device)
        if self._model is None:
            import torch
            from transformers import AutoModelForSequenceClassification

            from labeler.judge.backends.adapters import is_adapter_dir, load_adapter_model

            kwargs = {"num_labels": 1, "pad_token_id": self.tokenizer.pad_token_id}
            if is_adapter_dir(self.path):
                model = load_adapter_model(self.path, AutoModelForSequenceClassification, **kwargs)
            else:
                model = AutoModelForSequenceClassification.from_pretrained(
                    self.path, dtype=torch.float32, use_safetensors=True, trust_remote_code=False, **kwargs)
            model.config.pad_token_id = self.tokenizer.pad_token_id
            self._model = model.to(self.device, getattr(torch, self.dtype)).eval()
        return self._model

    def render_pair(self, pair: Pair, position: str, max_field_chars: int) -> str:
        first, second = (pair.response_a, pair.response_b) if position == "AB" else (pair.response_b, pair.response_a)
        prompt = shorten(pair.prompt, max_field_chars)
        return json.dumps([bt_text(self.tokenizer, prompt, shorten(r, max_field_chars)) for r in (first, second)])

    def render_chat(self, system: str, user: str, assistant_prefix: str) -> str:
        raise LabelerError("a Bradley-Terry judge reads pairs, not judge prompts")

    def rewards(self, texts: list[str]) -> list[float]:
        """One score per text; a text given twice (each response appears in both orders) is scored once."""
        unique = list(dict.fromkeys(texts))
        if self._probe:
            by_text = dict(zip(unique, self._head.rewards(self._probe_features(unique)).tolist()))
        else:
            by_text = dict(zip(unique, self._head_rewards(unique)))
        return [by_text[t] for t in texts]

    def _head_rewards(self, texts: list[str]) -> list[float]:
        import torch

        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True)
                scores += self.model(**enc.to(self.device)).logits[:, 0].float().tolist()
        return scores

    def _probe_features(self, texts: list[str]):
        from labeler.judge.backends.probe import features

        trunk, config = self.model, self._probe_config
        return features(trunk, self.tokenizer, texts, int(config["max_tokens"]), self.batch_size,
                        bf16=bool(config.get("bf16", True)), cpu_rows=self.cpu_rows)

    def verdict_logprobs(self, prompts: list[str], choices: tuple[str, str]) -> list[tuple[float, float]]:
        """log P(first better), log P(second better) per prompt. A probe ensemble's P is sigmoid of its evidence
        (`ProbeHead.evidence`); `strengths[prompt]` keeps (r_first, r_second, mean difference, spread)."""
        import torch
        import torch.nn.functional as F

        pairs = [json.loads(p) for p in prompts]
        texts = [t for pair in pairs for t in pair]
        if self._probe:
            unique = list(dict.fromkeys(texts))
            row = {t: i for i, t in enumerate(unique)}
            h = self._probe_features(unique)
            first = h[[row[pair[0]] for pair in pairs]]
            second = h[[row[pair[1]] for pair in pairs]]
            mean, spread = self._head.strength(first, second)
            logit = self._head.evidence(mean, spread)
            r_first, r_second = self._head.rewards(first), self._head.rewards(second)
        else:
            scores = torch.tensor(self.rewards(texts)).reshape(-1, 2)
            r_first, r_second = scores[:, 0], scores[:, 1]
            mean = logit = r_first - r_second
            spread = torch.zeros_like(mean)
        for i, prompt in enumerate(prompts):
            self.strengths[prompt] = Strength(float(r_first[i]), float(r_second[i]), float(mean[i]),
                                              float(spread[i]), self.members)
        return [(float(F.logsigmoid(x)), float(F.logsigmoid(-x))) for x in logit]

    @property
    def members(self) -> int:
        return self._head.members if self._probe else 1

    def generate(self, prompts, n, params, choices, marker, seeds=None):
        raise LabelerError("a Bradley-Terry judge has no rationales: use --mode direct")
