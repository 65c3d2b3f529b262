"""`labeler judges list/use`, judge resolution in annotate, user errors, and loading a LoRA version for inference."""

import json
from pathlib import Path

import pytest
import torch

from helpers import run, write_pairs
from labeler.cli import app
from labeler.cli.judges import judges_app
from labeler.errors import LabelerError
from labeler.store import Store
from schemas import JudgeVersion

GUIDE = (Path(__file__).parents[1] / "docs" / "retrain.md").read_text()  # the how-to page of the docs site
SUBCOMMANDS = sorted(c.name or c.callback.__name__ for c in judges_app.registered_commands)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_judges_subcommands_have_help_with_example_and_docs(name):
    result = run("judges", name, "--help")
    assert result.exit_code == 0
    assert f"Example: labeler judges {name}" in result.output.replace("\n", " ")
    assert f"labeler judges {name}" in GUIDE


def test_retrain_and_judges_are_registered():
    assert "retrain" in {c.name or c.callback.__name__ for c in app.registered_commands}
    assert "judges" in {g.name for g in app.registered_groups}


def record(tmp_path: Path, name: str, active: bool, model_dir: Path) -> JudgeVersion:
    from datetime import datetime

    return JudgeVersion(version=name, method="genrm-sft", start_judge_id="x@1", base_model=str(model_dir),
                        path=str(model_dir), weights="full", backend="transformers", mode="direct", samples=1,
                        judge_id=f"{name}@1", heldout_n=2, heldout_agreement=0.5, parent_agreement=0.5,
                        promoted=active, active=active, created_at=datetime(2026, 1, 1, 0, 0, int(name[1:4])))


def test_registering_an_active_version_deactivates_the_rest_in_one_transaction(tmp_path, tiny_llama):
    with Store(tmp_path / "l.duckdb") as store:
        store.register_judge(record(tmp_path, "v001-a", True, tiny_llama))
        store.register_judge(record(tmp_path, "v002-a", True, tiny_llama))
        assert [v.active for v in store.judge_versions()] == [False, True]
        with pytest.raises(Exception):  # duplicate name: the whole transaction rolls back
            store.register_judge(record(tmp_path, "v002-a", True, tiny_llama))
        assert store.active_judge().version == "v002-a"
        store.activate_judge("v001-a")
        assert store.active_judge().version == "v001-a"


def test_judges_cli_and_annotate_resolution_errors(tmp_path, tiny_llama, no_starter):
    db = tmp_path / "l.duckdb"
    assert run("judges", "list", "--db", db).exit_code == 1  # no database yet
    write_pairs(tmp_path / "d.jsonl", 3)
    assert run("ingest", tmp_path / "d.jsonl", "--db", db).exit_code == 0
    assert "No judge versions yet" in run("judges", "list", "--db", db).output
    assert json.loads(run("judges", "list", "--db", db, "--json").stdout) == []
    bad = run("judges", "use", "v009-x", "--db", db)
    assert bad.exit_code == 1 and "no judge version 'v009-x'" in bad.output
    relabel = run("annotate", "--db", db, "--relabel")
    assert relabel.exit_code == 1 and "there is none yet" in relabel.output
    both = run("annotate", "--db", db, "--judge", "v001-a", "--model", tiny_llama)
    assert both.exit_code == 1 and "pass one of them" in both.output
    with Store(db) as store:
        store.register_judge(record(tmp_path, "v001-a", True, tmp_path / "gone"))
    missing = run("annotate", "--db", db)
    assert missing.exit_code == 1 and "its directory" in missing.output and "is missing" in missing.output
    few = run("retrain", "--db", db, "--model", tiny_llama)
    assert few.exit_code == 1 and "retrain needs gold labels on at least two different prompts" in few.output
    usage = run("retrain", "--db", db, "--method", "ppo")
    assert usage.exit_code == 2 and "Invalid value for '--method'" in usage.output


def test_transformers_backend_loads_a_lora_version_merged(tmp_path, tiny_llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labeler.judge.backends import make_backend
    from labeler.judge.backends.models import check_model_dir

    base = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    adapter = tmp_path / "v001-star-dpo"
    peft.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert Path(config["base_model_name_or_path"]) == Path(tiny_llama)
    check_model_dir(adapter)
    backend = make_backend("transformers", model=str(adapter))
    backend.load()
    assert backend.model_id.startswith("v001-star-dpo@")
    prompt = backend.render_chat("s", "u", "Verdict: [[")
    ids = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        expected = peft(**ids).logits[0, -1]
        plain = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32)(**ids).logits[0, -1]
        got = backend.model(**ids).logits[0, -1]
    assert torch.allclose(got, expected, atol=1e-4) and not torch.allclose(got, plain, atol=1e-4)
    assert not hasattr(backend.model, "peft_config")  # merged for inference speed

    config["base_model_name_or_path"] = str(tmp_path / "nowhere")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(LabelerError, match="is not a local directory"):
        check_model_dir(adapter)
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(LabelerError, match="no adapter_model.safetensors"):
        check_model_dir(adapter)
