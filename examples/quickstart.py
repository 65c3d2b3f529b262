# %% [markdown]
# # labeler quickstart
#
# From Python: label a `datasets.Dataset` of response pairs with the judge, turn the labels into TRL preference
# rows, and take one DPO step with TRL on them. `examples/quickstart.ipynb` holds the same cells
# (`python examples/build_notebook.py` writes it from this file).
#
# ```bash
# .venv/bin/python examples/quickstart.py                  # the default judge labels, the default model trains
# LABELER_QUICKSTART_MODEL=./my-chat-model .venv/bin/python examples/quickstart.py
# ```
#
# Settings come from the environment (so the notebook runs the same code): `LABELER_QUICKSTART_MODEL` (a local
# Hugging Face chat model directory, the judge and the policy; default: labeler's default model),
# `LABELER_QUICKSTART_BACKEND` (`transformers`, or `fake` for canned verdicts), `LABELER_QUICKSTART_DIR` (where
# the store and the exports go; default: a new temporary folder).

# %%
import os
import tempfile
from pathlib import Path

import labeler

MODEL = os.environ.get("LABELER_QUICKSTART_MODEL") or None
BACKEND = os.environ.get("LABELER_QUICKSTART_BACKEND", "transformers")
WORK = Path(os.environ.get("LABELER_QUICKSTART_DIR") or tempfile.mkdtemp(prefix="labeler-quickstart-"))
PAIRS = next(p for p in (Path("examples/pairs.jsonl"), Path("pairs.jsonl")) if p.exists())
WORK.mkdir(parents=True, exist_ok=True)
DB = WORK / "labels.duckdb"

# %% [markdown]
# ## 1. Annotate a dataset
# `labeler.annotate` takes a `datasets.Dataset` (or a list of dicts) with prompt/response_a/response_b columns and
# returns it with label, confidence, rationale and provenance columns. The judge labels every pair in both orders
# (direct mode: the verdict-token logits). `db=` keeps the store, so a stopped run resumes where it was.

# %%
from datasets import load_dataset

pairs = load_dataset("json", data_files=str(PAIRS), split="train")
labelled = labeler.annotate(pairs, db=DB, model=MODEL, backend=BACKEND)
labels = labelled["label"]
judge_ids = {j for j in labelled["judge_id"] if j}
print(f"judged {len(labels)} pairs with {', '.join(judge_ids)}: {labels.count('A')} A, {labels.count('B')} B")

# %% [markdown]
# ## 2. Export
# TRL's preference rows (`prompt`/`chosen`/`rejected`) as a `datasets.Dataset`, and the store's full labels with
# their provenance as a Parquet file.

# %%
dpo = labeler.export(labelled, dpo=True)
rows = labeler.export(DB, out=WORK / "labels.parquet")
print(f"{dpo.num_rows} DPO rows; wrote {rows} labels to {WORK / 'labels.parquet'}")

# %% [markdown]
# ## 3. One DPO step with TRL
# The exported rows go to TRL's `DPOTrainer` as they are.

# %%
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

policy = MODEL or str(labeler.default_model())
args = DPOConfig(output_dir=str(WORK / "dpo-out"), max_steps=1, per_device_train_batch_size=2, max_length=512,
                 learning_rate=1e-6, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1,
                 activation_checkpointing=False)
trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy), args=args, train_dataset=dpo,
                     processing_class=AutoTokenizer.from_pretrained(policy))
trainer.train()
print(f"DPO step done: loss {trainer.state.log_history[0]['loss']:.4f} on {dpo.num_rows} exported rows")
