"""Shared pytest fixtures. Keep each block self-contained and delimited. Plain helpers (`run`, `write_pairs`)
live in tests/helpers.py so that module-level helpers of the test files can use them too."""

import pytest

# ---- the CLI ------------------------------------------------------------------------------------------------------
import helpers  # noqa: E402


@pytest.fixture
def cli():
    """`cli("annotate", path, "--db", db)`: the CliRunner result of `labeler ...` (helpers.run)."""
    return helpers.run
# ---- end the CLI --------------------------------------------------------------------------------------------------

# ---- tiny offline Llama (tests/tiny_model.py) -------------------------------------------------------------------
import torch  # noqa: E402

torch.set_num_threads(1)  # tiny models run fastest single-threaded, and CI boxes are shared


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """Directory holding a tiny random LlamaForCausalLM + BPE tokenizer with a ChatML template (safetensors)."""
    from tiny_model import build_tiny_llama  # lazy: keeps transformers out of runs that don't use the model

    return build_tiny_llama(tmp_path_factory.mktemp("tiny_llama"), seed=0)
# ---- end tiny offline Llama -------------------------------------------------------------------------------------

# ---- the starter judge (labeler/judge/backends/starter.py) --------------------------------------------------------
@pytest.fixture
def no_starter(tmp_path, monkeypatch):
    """An install that ships no starter judge: the untrained default model is the default judge."""
    from labeler.judge.backends import starter

    monkeypatch.setattr(starter, "_shipped", lambda: tmp_path / "no-starter")


@pytest.fixture
def tiny_starter(tmp_path, tiny_llama, monkeypatch):
    """A starter judge shipped for the tiny Llama (a random LoRA adapter, temperature 2), with the tiny Llama as
    the default model. Returns its manifest."""
    from starter_fixture import ship_tiny_starter

    return ship_tiny_starter(tmp_path, tiny_llama, monkeypatch)
# ---- end the starter judge ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reward_dir(tiny_llama, tmp_path_factory):
    """A tiny random Bradley-Terry model (sequence classification, one label) on the tiny Llama: a `bt` judge."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path_factory.mktemp("bt")
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_llama, num_labels=1,
                                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
