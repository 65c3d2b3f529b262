"""Configuration of `labeler retrain`: what to sample (STaR), how to split and gate, and how each trainer runs.

Our knobs only; one function per trainer maps them to TRL's config (`to_dpo_config`, `to_sft_config`,
`to_reward_config`). TrainingArguments is never subclassed.

Groups:
- `RetrainConfig`: method, outer STaR iterations, the held-out split and the promotion gate.
- `StarConfig`: sampling rationales with the current judge and turning them into chosen / rejected chains.
- `DpoTrainConfig` (star-dpo), `SftTrainConfig` (star-sft, genrm-sft), `BtTrainConfig` (bt): the trainers.

Changed defaults compared with TRL:
- `device="auto"` (`--device`): CUDA when available, else the CPU. On the CPU `use_cpu=True` and fp32 (genrm-sft:
  bf16 autocast); on CUDA bf16 autocast with fp32 weights (mixed precision), on the card the Trainer picks (cuda:0;
  choose another with CUDA_VISIBLE_DEVICES).
- `dataloader_pin_memory=False`, `report_to=[]`, `activation_checkpointing=False`.
- `learning_rate`: TRL's DPO default 1e-6 barely moves a LoRA adapter; with LoRA (the default) DPO uses 5e-5,
  SFT and BT 1e-4. With `full=True` they fall back to 1e-6 (DPO) and 1e-5 (SFT, BT).
- LoRA on every linear layer of the blocks (`all-linear`, which leaves out `lm_head`), r=16, alpha=32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

METHODS = ("star-dpo", "star-sft", "genrm-sft", "bt", "bt-probe")
METHOD_MODE = {"star-dpo": "cot", "star-sft": "cot", "genrm-sft": "direct", "bt": "direct", "bt-probe": "direct"}
REWARD_METHODS = ("bt", "bt-probe")  # judged by the reward backend: a score per response


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass
class RetrainConfig:
    """Method, outer loop, held-out split and promotion gate."""

    method: str = field(default="star-dpo", metadata={"help": f"Training method: one of {', '.join(METHODS)}."})
    iterations: int = field(default=1, metadata={
        "help": "STaR outer loop: sample with the current judge, train, repeat with the new judge (star-* only)."})
    heldout_fraction: float = field(default=0.2, metadata={
        "help": "Share of the prompts of newly seen gold pairs put in the held-out split (stored; never trained on)."})
    split_seed: int = field(default=0, metadata={"help": "Seed of the held-out split (by prompt)."})
    eval_samples: int = field(default=4, metadata={
        "help": "Votes per order when a cot judge is evaluated on the held-out split (direct judges read 1)."})
    eval_max_new_tokens: int = field(default=256, metadata={"help": "Rationale length limit when evaluating (cot)."})
    force: bool = field(default=False, metadata={"help": "Promote the new judge even if it is worse on the held-out split."})
    limit: int | None = field(default=None, metadata={"help": "Train on at most this many gold pairs (in ingest order)."})
    batch_size: int = field(default=8, metadata={"help": "Pairs per judging batch (sampling and evaluation)."})
    suspects: str = field(default="keep", metadata={
        "help": "Human labels `labeler audit` flagged: keep, drop, flip them, or smooth them (bt-probe: the "
        "target becomes the audit's probability of the human's choice) in the training split."})

    def __post_init__(self):
        _check(self.suspects in ("keep", "drop", "flip", "smooth"),
               f"suspects must be keep, drop, flip or smooth, got {self.suspects!r}")
        _check(self.method in METHODS, f"method must be one of {METHODS}, got {self.method!r}")
        _check(self.iterations >= 1, f"iterations must be >= 1, got {self.iterations}")
        _check(self.iterations == 1 or self.method.startswith("star-"),
               f"iterations={self.iterations} needs a star-* method (the outer loop re-samples rationales), "
               f"got method={self.method!r}")
        _check(0.0 < self.heldout_fraction < 1.0, f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        _check(self.eval_samples >= 1, f"eval_samples must be >= 1, got {self.eval_samples}")
        _check(self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def mode(self) -> str:
        """How the trained judge is used: cot for star-*, direct for genrm-sft and bt."""
        return METHOD_MODE[self.method]


@dataclass
class StarConfig:
    """Sampling rationales with the current judge (Mahan et al. 2024, STaR) and building chosen/rejected chains."""

    samples: int = field(default=4, metadata={
        "help": "K rationales sampled per order and pair. Samples already stored by `annotate` for the same judge "
        "and decoding parameters are reused."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling top-p."})
    max_new_tokens: int = field(default=256, metadata={"help": "Rationale length limit."})
    seed: int = field(default=0, metadata={"help": "Sampling seed (part of the judge key, so it decides reuse)."})
    max_pairs_per_order: int = field(default=2, metadata={
        "help": "Cap on DPO pairs (star-dpo) or correct chains (star-sft) per pair and order; both orders are kept."})
    rationalize: bool = field(default=True, metadata={
        "help": "When an order has no correct chain, tell the model the right answer and ask it to justify it; "
        "the justification is trained against the prompt without the hint."})
    rationalize_samples: int = field(default=2, metadata={"help": "Rationalizations sampled per order that needs one."})
    use_notes: bool = field(default=True, metadata={
        "help": "A reviewer's free-text rationale (gold_labels.note) becomes a chosen chain for the order it was "
        "written for (A/B as the reviewer saw them)."})

    def __post_init__(self):
        _check(self.samples >= 1, f"samples must be >= 1, got {self.samples}")
        _check(0.0 < self.top_p <= 1.0 and self.temperature > 0.0,
               f"need 0 < top_p <= 1 and temperature > 0, got top_p={self.top_p}, temperature={self.temperature}")
        _check(self.max_new_tokens >= 8, f"max_new_tokens must be >= 8, got {self.max_new_tokens}")
        _check(self.max_pairs_per_order >= 1, f"max_pairs_per_order must be >= 1, got {self.max_pairs_per_order}")
        _check(self.rationalize_samples >= 1, f"rationalize_samples must be >= 1, got {self.rationalize_samples}")


@dataclass
class _TrainConfig:
    """Knobs shared by every trainer."""

    learning_rate: float | None = field(default=None, metadata={
        "help": "Peak learning rate (AdamW, linear decay). Default depends on the trainer and on LoRA vs full."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs over the training rows."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimizer steps (-1: use epochs)."})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "Rows per forward pass."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Forward passes per optimizer step."})
    max_length: int = field(default=2048, metadata={
        "help": "Token limit of prompt + completion; longer rows are cut (DPO/SFT) or dropped (BT)."})
    warmup_steps: int = field(default=0, metadata={"help": "Linear warm-up steps."})
    save_steps: int = field(default=25, metadata={
        "help": "Checkpoint every N steps in the version's temporary dir; a killed retrain resumes from the last one."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept."})
    logging_steps: int = field(default=5, metadata={"help": "Log the loss every N steps."})
    seed: int = field(default=0, metadata={"help": "Training seed (data order, LoRA init, reward head init)."})
    full: bool = field(default=False, metadata={"help": "Full fine-tuning instead of a LoRA adapter."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (TRL disables model dropout anyway)."})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "Modules that get an adapter: 'all-linear' or a comma-separated list of names (lm_head is refused)."})
    device: str = field(default="auto", metadata={
        "help": "Where training (and the run's judging) happens: auto (CUDA when available), cpu, cuda or cuda:0 (the "
        "Trainer trains on cuda:0; pick the card with CUDA_VISIBLE_DEVICES). bf16 autocast on CUDA."})

    _lora_lr = 1e-4
    _full_lr = 1e-5

    def __post_init__(self):
        if self.learning_rate is None:
            self.learning_rate = self._full_lr if self.full else self._lora_lr
        _check(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        _check(self.num_train_epochs > 0 or self.max_steps > 0,
               f"need num_train_epochs > 0 or max_steps > 0, got num_train_epochs={self.num_train_epochs}, "
               f"max_steps={self.max_steps}")
        _check(self.per_device_train_batch_size >= 1 and self.gradient_accumulation_steps >= 1,
               f"batch sizes must be >= 1, got per_device_train_batch_size={self.per_device_train_batch_size}, "
               f"gradient_accumulation_steps={self.gradient_accumulation_steps}")
        _check(self.max_length >= 32, f"max_length must be >= 32, got {self.max_length}")
        _check(self.save_steps >= 1, f"save_steps must be >= 1, got {self.save_steps}")
        _check(self.lora_r >= 1 and self.lora_alpha >= 1, f"lora_r and lora_alpha must be >= 1, got {self.lora_r}, "
               f"{self.lora_alpha}")
        _check(0.0 <= self.lora_dropout < 1.0, f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        targets = [t.strip() for t in self.lora_target_modules.split(",")]
        _check("lm_head" not in targets, f"LoRA on lm_head is not supported, got lora_target_modules="
               f"{self.lora_target_modules!r}")
        _check(self.device in ("auto", "cpu", "cuda", "cuda:0"), f"device must be auto, cpu, cuda or cuda:0 (the "
               f"Trainer trains on cuda:0; choose the card with CUDA_VISIBLE_DEVICES), got {self.device!r}")

    def target_modules(self) -> str | list[str]:
        names = [t.strip() for t in self.lora_target_modules.split(",") if t.strip()]
        return "all-linear" if names == ["all-linear"] else names


@dataclass
class DpoTrainConfig(_TrainConfig):
    """STaR-DPO: DPO on (prompt, correct chain, incorrect chain) rows."""

    beta: float = field(default=0.1, metadata={"help": "DPO beta: higher keeps the judge closer to the reference."})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss type (sigmoid = the DPO paper)."})

    _lora_lr = 5e-5
    _full_lr = 1e-6

    def __post_init__(self):
        super().__post_init__()
        _check(self.beta > 0, f"beta must be > 0, got {self.beta}")


@dataclass
class SftTrainConfig(_TrainConfig):
    """star-sft (correct chains) and genrm-sft (the direct verdict token): loss on the completion only."""


@dataclass
class VerdictTrainConfig(SftTrainConfig):
    """genrm-sft: the direct verdict token, trained at scale (`trainer/verdict.py`): LoRA on the top 8 blocks, bf16
    autocast, 16 rows per step, length-grouped, constant learning rate after a short warm-up. Chosen for speed on
    the 2-core CPU (one step of 16 x 384 tokens: LoRA on all 30 blocks ~330 tokens/s, top 8 ~600; fp32 ~450, bf16
    autocast ~640); whether they also learn best is not settled (the first full run learnt nothing, README)."""

    train_layers: int = field(default=8, metadata={
        "help": "Train only the top N transformer blocks (LoRA, or full weights with full=True); 0 = all blocks."})
    bf16: bool = field(default=True, metadata={
        "help": "bf16 autocast (CPU: needs avx512_bf16 or AMX to pay; weights and adapter stay fp32)."})
    group_by_length: bool = field(default=True, metadata={
        "help": "Batch rows of similar length together (within an epoch: every pair once an epoch)."})
    lr_scheduler_type: str = field(default="constant_with_warmup", metadata={
        "help": "Learning-rate schedule (transformers name); constant keeps a checkpoint after n pairs equal to a "
        "run on those n pairs."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Rows per forward pass."})
    warmup_steps: int = field(default=20, metadata={"help": "Linear warm-up steps."})
    save_steps: int = field(default=50, metadata={
        "help": "Checkpoint every N steps in the version's temporary dir; a killed retrain resumes from the last one."})
    logging_steps: int = field(default=10, metadata={"help": "Log the loss every N steps."})
    snapshot_pairs: str = field(default="", metadata={
        "help": "Comma-separated pair counts (e.g. '250,1000,4000'): save the adapter once training has seen that "
        "many rows, in <checkpoints>/snapshots/rows-N (learning curves from one run)."})

    _lora_lr = 2e-4

    def __post_init__(self):
        super().__post_init__()
        _check(self.train_layers >= 0, f"train_layers must be >= 0, got {self.train_layers}")
        _check(all(p.strip().isdigit() for p in self.snapshot_pairs.split(",") if p.strip()),
               f"snapshot_pairs must be comma-separated integers, got {self.snapshot_pairs!r}")

    def snapshots(self) -> list[int]:
        return sorted({int(p) for p in self.snapshot_pairs.split(",") if p.strip()})


@dataclass
class BtTrainConfig(_TrainConfig):
    """Bradley-Terry baseline: a scalar reward head on the base model, trained with TRL's RewardTrainer."""

    center_rewards_coefficient: float | None = field(default=None, metadata={
        "help": "Pushes rewards towards zero mean (Eisenstein et al. 2023); None disables it."})


@dataclass
class ProbeTrainConfig:
    """bt-probe (`trainer/probe.py`): Bradley-Terry heads on the frozen features of the base model's first blocks.
    Defaults chosen by 5-fold cross-validation by prompt on ../shared/data/train (README, "The starter judge")."""

    layers: int = field(default=8, metadata={"help": "Read each response's feature after this many blocks."})
    max_tokens: int = field(default=320, metadata={
        "help": "Keep the last N tokens of each user turn + response (the response, and the end of the prompt)."})
    l2: float = field(default=0.3, metadata={"help": "L2 strength of the reward heads (standardised features)."})
    safety_sources: str = field(default="", metadata={
        "help": "Comma-separated `source` values whose pairs train a separate safety reward, mixed with the "
        "helpfulness reward by a learnt gate (empty: one reward)."})
    gate_l2: float = field(default=0.1, metadata={"help": "L2 strength of the gate."})
    members: int = field(default=10, metadata={
        "help": "Heads in the ensemble, each fitted on a bootstrap resample of the pairs; their spread on a pair "
        "is its uncertainty (1: one head)."})
    spread_weight: float = field(default=3.0, metadata={
        "help": "k in P(A) = sigmoid(mean / sqrt(1 + k * spread^2)): how much the heads' disagreement lowers a "
        "label's confidence."})
    prior_l2: float | None = field(default=None, metadata={
        "help": "Continuing a probe judge: L2 strength of the correction fitted on top of its heads (default: "
        "chosen by 5-fold cross-validation by prompt on the training pairs)."})
    batch_size: int = field(default=8, metadata={"help": "Texts per forward pass when reading features."})
    bf16: bool = field(default=False, metadata={
        "help": "bf16 autocast for the features (training and judging): 1.5x faster on CPUs with bf16 units, ~10x "
        "slower on CPUs without them (AVX2 only)."})
    chunk_pairs: int = field(default=500, metadata={
        "help": "Features are saved every N pairs; a killed retrain resumes after the last saved chunk."})
    device: str = field(default="auto", metadata={"help": "Where features are computed: auto, cpu, cuda or cuda:N."})
    seed: int = field(default=0, metadata={"help": "Seed (the head's solver is deterministic; kept for the key)."})
    full: bool = False  # no weights of the base are trained (RetrainPlan readers ask)

    def __post_init__(self):
        _check(self.layers >= 1 and self.max_tokens >= 8, f"need layers >= 1 and max_tokens >= 8, got {self.layers}, "
               f"{self.max_tokens}")
        _check(self.l2 > 0 and self.gate_l2 > 0, f"l2 and gate_l2 must be > 0, got {self.l2}, {self.gate_l2}")
        _check(self.batch_size >= 1 and self.chunk_pairs >= 1, "batch_size and chunk_pairs must be >= 1")
        _check(self.members >= 1 and self.spread_weight >= 0, f"need members >= 1 and spread_weight >= 0, got "
               f"{self.members}, {self.spread_weight}")
        _check(self.prior_l2 is None or self.prior_l2 > 0, f"prior_l2 must be > 0, got {self.prior_l2}")
        _check(not self.full, "bt-probe trains no weights of the base model; full does not apply")

    def safety_set(self) -> set[str]:
        return {s.strip() for s in self.safety_sources.split(",") if s.strip()}


TRAIN_CONFIGS = {"star-dpo": DpoTrainConfig, "star-sft": SftTrainConfig, "genrm-sft": VerdictTrainConfig,
                 "bt": BtTrainConfig, "bt-probe": ProbeTrainConfig}


SECTIONS = ("retrain", "star", "train")


def build_configs(sections: dict[str, dict[str, Any]]) -> tuple[RetrainConfig, StarConfig, _TrainConfig]:
    """Build the three configs from `{"retrain": {...}, "star": {...}, "train": {...}}` (YAML, then flags).

    None values are dropped, so a flag that was not given keeps the YAML value or the default."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown config section(s) {sorted(unknown)}; expected {list(SECTIONS)}")
    clean = {name: {k: v for k, v in (sections.get(name) or {}).items() if v is not None} for name in SECTIONS}
    retrain = RetrainConfig(**_known(RetrainConfig, clean["retrain"], "retrain"))
    star = StarConfig(**_known(StarConfig, clean["star"], "star"))
    train_cls = TRAIN_CONFIGS[retrain.method]
    return retrain, star, train_cls(**_known(train_cls, clean["train"], "train"))


def _known(cls, values: dict[str, Any], section: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {section} option(s) {unknown} for {cls.__name__}; known: {sorted(names)}")
    return values


def load_yaml(path: Path) -> dict[str, dict[str, Any]]:
    """A YAML file with up to three mappings: `retrain:`, `star:` and `train:`."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected mappings under {', '.join(SECTIONS)}")
    return {str(k): {str(n).replace("-", "_"): v for n, v in d.items()} for k, d in data.items()}


def on_cuda(cfg: _TrainConfig) -> bool:
    """Whether the run trains on CUDA; `--device cuda` on a machine without CUDA is a LabelerError here."""
    from labeler.judge.backends.devices import device_type, resolve_device

    return device_type(resolve_device(cfg.device)) == "cuda"


def _trl_common(cfg: _TrainConfig, output_dir: Path, quiet: bool) -> dict[str, Any]:
    cuda = on_cuda(cfg)
    return dict(
        output_dir=str(output_dir), learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_train_epochs,
        max_steps=cfg.max_steps, per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, warmup_steps=cfg.warmup_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps, seed=cfg.seed, data_seed=cfg.seed, bf16=cuda, fp16=False, use_cpu=not cuda,
        dataloader_pin_memory=False, report_to=[], activation_checkpointing=False, disable_tqdm=quiet,
        remove_unused_columns=True, save_only_model=False,
    )


def to_dpo_config(cfg: DpoTrainConfig, output_dir: Path, quiet: bool = False):
    from trl import DPOConfig

    return DPOConfig(**_trl_common(cfg, output_dir, quiet), max_length=cfg.max_length, beta=cfg.beta,
                     loss_type=[cfg.loss_type])


def to_sft_config(cfg: SftTrainConfig, output_dir: Path, quiet: bool = False):
    from trl import SFTConfig

    return SFTConfig(**_trl_common(cfg, output_dir, quiet), max_length=cfg.max_length, completion_only_loss=True,
                     packing=False)


def to_verdict_args(cfg: VerdictTrainConfig, output_dir: Path, quiet: bool, epochs: int):
    """TrainingArguments for `trainer/verdict.py`; its dataset already holds `epochs` passes (one order each)."""
    from transformers import TrainingArguments

    common = _trl_common(cfg, output_dir, quiet)
    common.update(num_train_epochs=cfg.num_train_epochs / epochs, bf16=cfg.bf16,
                  train_sampling_strategy="sequential",  # verdict.schedule ordered the rows, epoch by epoch
                  lr_scheduler_type=cfg.lr_scheduler_type, remove_unused_columns=False)
    return TrainingArguments(**common)


def to_reward_config(cfg: BtTrainConfig, output_dir: Path, quiet: bool = False):
    from trl import RewardConfig

    return RewardConfig(**_trl_common(cfg, output_dir, quiet), max_length=cfg.max_length,
                        center_rewards_coefficient=cfg.center_rewards_coefficient)


def as_dict(*configs) -> dict[str, dict[str, Any]]:
    return {type(c).__name__: asdict(c) for c in configs}
