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
