# %% [markdown]
# # labeler quickstart
#
# From Python: ingest preference pairs, label them with the judge, export TRL rows, and take one DPO step with
# TRL on the exported data. `examples/quickstart.ipynb` holds the same cells (`python examples/build_notebook.py`
# writes it from this file).
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
# ## 1. Ingest
# Files, `datasets` folders or cached Hub datasets; the layout (ours, TRL, HH, UltraFeedback) is detected.

# %%
for report in labeler.ingest(DB, [PAIRS]):
    print(f"{report.path}: layout {report.layout}, {report.counts.new_pairs} new pairs, "
          f"{report.counts.quarantined} quarantined")

# %% [markdown]
# ## 2. Annotate
# The judge labels every pair in both orders (direct mode: the verdict-token logits).

# %%
result = labeler.annotate(DB, model=MODEL, backend=BACKEND)
labels = [j.label for j in result.judged]
print(f"judged {len(result.judged)} pairs with {result.judge_id}: {labels.count('A')} A, {labels.count('B')} B")

# %% [markdown]
# ## 3. Export
# TRL's preference rows (`prompt`/`chosen`/`rejected`), plus the full labels with their provenance.

# %%
rows = labeler.export(DB, out=WORK / "dpo.jsonl", dpo=True)
labeler.export(DB, out=WORK / "labels.parquet")
print(f"wrote {rows} DPO rows to {WORK / 'dpo.jsonl'} and the labels to {WORK / 'labels.parquet'}")

# %% [markdown]
# ## 4. One DPO step with TRL
# The exported file is a `datasets` JSON dataset that TRL's `DPOTrainer` reads as it is.

# %%
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

from labeler.judge.backends.models import default_model_dir

policy = MODEL or str(default_model_dir())
data = load_dataset("json", data_files=str(WORK / "dpo.jsonl"), split="train")
args = DPOConfig(output_dir=str(WORK / "dpo-out"), max_steps=1, per_device_train_batch_size=2, max_length=512,
                 learning_rate=1e-6, report_to=[], save_strategy="no", use_cpu=True, logging_steps=1,
                 activation_checkpointing=False)
trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(policy), args=args, train_dataset=data,
                     processing_class=AutoTokenizer.from_pretrained(policy))
trainer.train()
print(f"DPO step done: loss {trainer.state.log_history[0]['loss']:.4f} on {data.num_rows} exported rows")
