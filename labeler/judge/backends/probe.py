"""Bradley-Terry judges on a frozen, cut base model (`labeler retrain --method bt-probe`).

A response is read as the reward backend reads it (`reward.bt_text`: user turn + assistant response, EOS-ended,
cut to its last `max_tokens` tokens); only the base model's first `layers` blocks run (the final norm applied, in
bf16 autocast on CPUs with bf16 support), and the hidden state at the EOS is the response's feature h. The reward
is linear in h, or, with a safety expert, a gated mixture of two linear rewards (as Llama 2 combined a helpfulness
and a safety reward model, Touvron et al. 2023):

    r(h) = g(h) * w_safety . z + (1 - g(h)) * w_help . z,   z = h / scale,   g(h) = sigmoid(u . (h - mu) / sd + c)

where g is trained to recognise the responses of the safety sources' prompts. A pair's P(A) = sigmoid(r_A - r_B)
in both orders. A judge dir holds `probe_config.json` (base model, relative to the dir where it can be, layers,
max tokens) and `probe_head.safetensors`; nothing of the base model is copied.
"""

from __future__ import annotations

import json
from pathlib import Path

from labeler.errors import LabelerError
from labeler.judge.backends.batching import length_batches

CONFIG = "probe_config.json"
HEAD = "probe_head.safetensors"


def is_probe_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def read_config(path: Path) -> dict:
    try:
        config = json.loads((Path(path) / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LabelerError(f"{path}: cannot read {CONFIG}: {e}") from None
    missing = {"base_model_name_or_path", "layers", "max_tokens"} - set(config)
    if missing:
        raise LabelerError(f"{path}: {CONFIG} lacks {', '.join(sorted(missing))}")
    return config


def probe_base(path: Path) -> Path:
    """The base model dir whose first blocks compute the features (relative paths are to the judge dir)."""
    base = Path(read_config(path)["base_model_name_or_path"])
    return base if base.is_absolute() else Path(path) / base


def load_trunk(base: Path, layers: int, device="cpu"):
    """The base model's embedding and first `layers` blocks (+ final norm), float32, eval mode."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(base, dtype=torch.float32, use_safetensors=True, trust_remote_code=False)
    if not 1 <= layers <= len(model.layers):
        raise LabelerError(f"a probe on {base} reads after 1..{len(model.layers)} blocks, not {layers}")
    model.layers = model.layers[:layers]  # the blocks above never run
    model.config.num_hidden_layers = layers
    return model.to(device).eval()


def features(trunk, tokenizer, texts: list[str], max_tokens: int, batch_size: int = 8, bf16: bool = True,
             on_batch=None, layers: list[int] | None = None, cpu_rows: float | None = None):
    """Float32 features (texts x hidden) at each text's last token; texts are batched by length, left-padded
    (with `cpu_rows`, on the CPU a batch also closes once it holds that many tokens: batching.length_batches).
    `layers` (benchmarks): the features after each of those blocks instead (layers x texts x hidden), the final
    norm applied to each, from one pass."""
    import torch

    from labeler.judge.backends.padding import left_pad, positions_from_mask

    ids = [tokenizer(t, add_special_tokens=False).input_ids[-max_tokens:] for t in texts]
    wanted = layers or [len(trunk.layers)]
    out = torch.zeros(len(wanted), len(ids), trunk.config.hidden_size)
    device = next(trunk.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        rows = cpu_rows if device.type == "cpu" else None  # shortest first: the batches the shipped head was fitted in
        for idx in length_batches([len(x) for x in ids], batch_size, rows, longest_first=False):
            x, mask = left_pad([ids[i] for i in idx], tokenizer.pad_token_id, device)
            hidden = trunk(input_ids=x, attention_mask=mask, position_ids=positions_from_mask(mask),
                           output_hidden_states=layers is not None)
            for k, layer in enumerate(wanted):
                last = hidden.last_hidden_state if layer == len(trunk.layers) else trunk.norm(hidden.hidden_states[layer])
                out[k, idx] = last[:, -1].float().cpu()
            if on_batch:
                on_batch(len(idx))
    return out if layers is not None else out[0]


class ProbeHead:
    """The reward on features (module docstring); `tensors` as saved in probe_head.safetensors.

    An ensemble stacks M heads (each tensor gets a leading member axis; `c` is M x 1): heads trained on bootstrap
    resamples of the pairs, as "Secrets of RLHF II" (arXiv 2401.06080) measures a pair's preference strength with
    reward models that differ only in their data. The reward is the members' mean; `strength` gives a pair's mean
    reward difference and its spread over the members. Corrections fitted on reviewed pairs on top of the heads
    (trainer/probe_adapt.py), `adapt<k>.*`: each adds g_k(h) * delta_k . z to every member's reward, where the
    domain gate g_k = sigmoid(u . (h - mu) / sd + c) recognises the responses of the reviewed domain (absent: 1)."""

    def __init__(self, tensors: dict):
        self.t = tensors

    @property
    def gated(self) -> bool:
        return "w_safety" in self.t

    @property
    def members(self) -> int:
        return 1 if self.t["w_help"].dim() == 1 else int(self.t["w_help"].shape[0])

    @property
    def spread_weight(self) -> float:
        """k in the evidence m / sqrt(1 + k * sd^2) that sets P(A) (0: the mean difference alone)."""
        return float(self.t["spread_weight"]) if "spread_weight" in self.t else 0.0

    def _stacked(self, name: str):
        x = self.t[name]
        return x if x.dim() == 2 else x[None]

    def member_rewards(self, h):
        """Members x texts rewards."""
        import torch

        z = h[None] / self._stacked("scale")[:, None, :]
        help_ = (z * self._stacked("w_help")[:, None, :]).sum(-1)
        if self.gated:
            std = (h[None] - self._stacked("mu")[:, None, :]) / self._stacked("sd")[:, None, :]
            g = torch.sigmoid((std * self._stacked("u")[:, None, :]).sum(-1) + self._stacked("c"))
            help_ = g * (z * self._stacked("w_safety")[:, None, :]).sum(-1) + (1 - g) * help_
        for k in range(self.corrections):
            delta = (z * self._stacked(f"adapt{k}.w")[:, None, :]).sum(-1)
            help_ = help_ + self.domain_gate(h, k)[None] * delta
        return help_

    @property
    def corrections(self) -> int:
        return sum(1 for name in self.t if name.endswith(".w") and name.startswith("adapt"))

    def domain_gate(self, h, k: int):
        """g_k(h) per text: 1 where correction k has no gate."""
        import torch

        if f"adapt{k}.u" not in self.t:
            return torch.ones(len(h))
        t = {name: self.t[f"adapt{k}.{name}"] for name in ("u", "c", "mu", "sd")}
        return torch.sigmoid(((h - t["mu"]) / t["sd"]) @ t["u"] + t["c"])

    def rewards(self, h):
        return self.member_rewards(h).mean(0)

    def strength(self, h_first, h_second):
        """(mean, spread) over the members of r(first) - r(second), per pair; the spread is 0 for one head."""
        diff = self.member_rewards(h_first) - self.member_rewards(h_second)
        spread = diff.std(0) if diff.shape[0] > 1 else diff[0] * 0
        return diff.mean(0), spread

    def evidence(self, mean, spread):
        """The logit of P(first is better): the mean difference, shrunk where the members disagree."""
        return mean / (1 + self.spread_weight * spread**2).sqrt()

    @classmethod
    def stack(cls, heads: list["ProbeHead"], spread_weight: float = 0.0) -> "ProbeHead":
        import torch

        if len(heads) == 1 and not spread_weight:
            return heads[0]
        tensors = {k: torch.stack([h.t[k] for h in heads]) for k in heads[0].t}
        tensors["spread_weight"] = torch.tensor(float(spread_weight))
        return cls(tensors)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.t.items()}, str(Path(path) / HEAD))

    @classmethod
    def load(cls, path: Path) -> "ProbeHead":
        from safetensors.torch import load_file

        file = Path(path) / HEAD
        if not file.is_file():
            raise LabelerError(f"{path}: a probe judge needs {HEAD}")
        return cls(load_file(str(file)))
