"""Ingest of the ecosystem's preference layouts and containers, each input built in the test with `datasets`:
our pairs, TRL explicit and implicit prompt (strings, HH transcripts, message lists), UltraFeedback ratings; JSONL,
JSON arrays, Parquet, CSV, save_to_disk folders and a Hub dataset in the local cache."""

import json
import os
from pathlib import Path

import datasets
import pytest

from helpers import run
from labeler.errors import LabelerError
from labeler.ingestion import ingest_files
from labeler.store import Store

datasets.disable_progress_bars()

HH = [{"chosen": f"\n\nHuman: What is {i} + {i}?\n\nAssistant: It is {2 * i}.",
       "rejected": f"\n\nHuman: What is {i} + {i}?\n\nAssistant: It is {2 * i + 1}."} for i in range(40)]
MULTI_TURN = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi!"},
              {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "t.duckdb") as s:
        yield s


def pairs(store) -> dict[str, dict]:
    """Every stored pair by its prompt, with its gold label."""
    rows = store.con.execute(
        "SELECT p.prompt, p.response_a, p.response_b, p.prompt_messages, p.extra, g.label, p.source "
        "FROM pairs p LEFT JOIN gold_labels g USING (pair_id) ORDER BY p.source_file, p.source_line").fetchall()
    out = {}
    for prompt, a, b, messages, extra, label, source in rows:
        out.setdefault(prompt, []).append({"a": a, "b": b, "messages": json.loads(messages) if messages else None,
                                           "extra": json.loads(extra), "label": label, "source": source})
    return out


def chosen_of(pair: dict) -> str:
    return pair["a"] if pair["label"] == "A" else pair["b"]


def quarantine(store):
    return store.con.execute("SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()


def test_our_layout_from_a_save_to_disk_folder_and_a_json_array(store, tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"q{i}", "response_a": "x", "response_b": "y", "label": lab}
            for i, lab in enumerate(["a", "B", "Tie", None])]
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "ours")
    (tmp_path / "ours.json").write_text(json.dumps([{**r, "id": r["id"] + "j"} for r in rows], indent=2))
    reports = ingest_files(store, [tmp_path / "ours", tmp_path / "ours.json"])
    assert [(r.layout, r.counts.new_pairs, r.counts.gold_labels) for r in reports] == [("pairs", 4, 3)] * 2
    labels = dict(store.con.execute("SELECT pair_id, label FROM gold_labels").fetchall())
    assert [labels.get(f"p{i}") for i in range(4)] == ["A", "B", "tie", None]  # case-insensitive, tie kept


def test_trl_explicit_prompt_strings_randomise_the_order_and_keep_the_preference(store, tmp_path):
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"It is {2 * i}.", "rejected": f"It is {2 * i + 1}.",
             "source": "arith"} for i in range(40)]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "trl.jsonl")
    (report,) = ingest_files(store, [tmp_path / "trl.jsonl"])
    assert (report.layout, report.counts.new_pairs, report.counts.gold_labels) == ("trl", 40, 40)
    stored = pairs(store)
    for i in range(40):
        (pair,) = stored[f"What is {i} + {i}?"]
        assert chosen_of(pair) == f"It is {2 * i}." and pair["source"] == "arith" and pair["messages"] is None
    firsts = [p[0]["label"] for p in stored.values()]
    assert 10 < firsts.count("A") < 30  # the order is drawn per pair: position says nothing about preference
    store.con.execute("DELETE FROM gold_labels; DELETE FROM pairs")
    ingest_files(store, [tmp_path / "trl.jsonl"])
    assert [p[0]["label"] for p in pairs(store).values()] == firsts  # ... and the same draw every time


def test_trl_explicit_prompt_conversations_from_parquet(store, tmp_path):
    rows = [{"prompt": MULTI_TURN, "chosen": [{"role": "assistant", "content": "Paris."}],
             "rejected": [{"role": "assistant", "content": "Lyon."}]}]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "conv.parquet")
    (report,) = ingest_files(store, [tmp_path / "conv.parquet"])
    assert report.layout == "trl" and report.counts.new_pairs == 1
    ((prompt, (pair,)),) = pairs(store).items()
    assert prompt == ("[System]\nAnswer briefly.\n\n[User]\nHi!\n\n[Assistant]\nHello.\n\n"
                      "[User]\nCapital of France?")
    assert pair["messages"] == MULTI_TURN and chosen_of(pair) == "Paris."


def test_trl_implicit_prompt_hh_transcripts_from_csv(store, tmp_path):
    rows = HH[:2] + [{"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: Blue.",
                      "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: No."}]
    datasets.Dataset.from_list(rows).to_csv(tmp_path / "hh.csv", index=False)
    (report,) = ingest_files(store, [tmp_path / "hh.csv"])
    assert (report.layout, report.counts.new_pairs, report.counts.gold_labels) == ("trl-implicit", 3, 3)
    stored = pairs(store)
    (single,) = stored["What is 1 + 1?"]
    assert chosen_of(single) == "It is 2." and single["messages"] == [{"role": "user", "content": "What is 1 + 1?"}]
    (multi,) = stored["[User]\nHi\n\n[Assistant]\nHello!\n\n[User]\nName a colour."]
    assert chosen_of(multi) == "Blue." and [m["role"] for m in multi["messages"]] == ["user", "assistant", "user"]


def test_trl_implicit_prompt_plain_strings_split_as_trl_does(store, tmp_path):
    rows = [{"chosen": "TL;DR: The cat sat.", "rejected": "TL;DR: The dog ran."}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "s.jsonl")
    ingest_files(store, [tmp_path / "s.jsonl"])
    (pair,) = pairs(store)["TL;DR: The"]  # the space before the first difference starts the responses
    assert chosen_of(pair) == " cat sat." and pair["messages"] is None


def test_trl_implicit_prompt_message_lists_from_a_dataset_dict_folder(store, tmp_path):
    def conv(answer):
        return [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": answer}]

    train = datasets.Dataset.from_list([{"chosen": conv("Paris."), "rejected": conv("Lyon.")}])
    test = datasets.Dataset.from_list([{"chosen": conv("It is Paris."), "rejected": conv("Marseille.")}])
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(tmp_path / "dd")
    reports = ingest_files(store, [tmp_path / "dd"])
    assert [(Path(r.path).name, r.layout, r.counts.new_pairs) for r in reports] == [
        ("dd:train", "trl-implicit", 1), ("dd:test", "trl-implicit", 1)]
    assert sorted(chosen_of(p) for p in pairs(store)["Capital of France?"]) == ["It is Paris.", "Paris."]
    store.con.execute("DELETE FROM gold_labels; DELETE FROM pairs")
    assert [r.path for r in ingest_files(store, [Path(f"{tmp_path / 'dd'}:test")])] == [f"{tmp_path / 'dd'}:test"]
    with pytest.raises(LabelerError, match=r"no split 'dev' \(splits: train, test\)"):
        ingest_files(store, [Path(f"{tmp_path / 'dd'}:dev")])


def test_ultrafeedback_makes_a_pair_per_two_different_ratings(store, tmp_path):
    completions = [{"model": "m1", "response": "ok", "overall_score": 3.0},
                   {"model": "m2", "response": "best", "overall_score": 5.0},
                   {"model": "m3", "response": "also ok", "overall_score": 3.0},
                   {"model": "m4", "response": "no rating", "overall_score": None}]
    rows = [{"source": "evol", "instruction": "Write a haiku.", "completions": completions},
            {"source": "evol", "instruction": "All equal.", "completions": completions[:1] + completions[2:3]}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "uf.jsonl")
    (report,) = ingest_files(store, [tmp_path / "uf.jsonl"])
    assert (report.layout, report.counts.new_pairs, report.skipped) == ("ultrafeedback", 2, 1)
    made = pairs(store)["Write a haiku."]
    assert sorted((chosen_of(p), p["b"] if p["label"] == "A" else p["a"]) for p in made) == [
        ("best", "also ok"), ("best", "ok")]  # 3 vs 3 makes none; an unrated completion is left out
    for p in made:  # the ratings and models follow the responses into extra
        winner = p["label"].lower()
        assert p["extra"][f"rating_{winner}"] == 5.0 and p["extra"][f"model_{winner}"] == "m2"
        assert p["source"] == "evol"


def test_ultrafeedback_with_a_parallel_ratings_list(store, tmp_path):
    rows = [{"prompt": "Say hi.", "completions": ["hi", "hello", "yo"], "ratings": [2, 9, 5]}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "r.jsonl")
    (report,) = ingest_files(store, [tmp_path / "r.jsonl"])
    assert report.counts.new_pairs == 3
    assert sorted(chosen_of(p) for p in pairs(store)["Say hi."]) == ["hello", "hello", "yo"]


def test_bad_rows_of_other_layouts_name_the_input_field(store, tmp_path):
    lines = [
        {"prompt": "q", "chosen": "a", "rejected": "b"},                                          # 1 ok
        {"prompt": "q", "chosen": "  ", "rejected": "b"},                                         # 2 empty
        {"prompt": "q", "chosen": 5, "rejected": "b"},                                            # 3 type
        {"prompt": [{"role": "user", "content": 7}], "chosen": "a", "rejected": "b"},             # 4 content
        {"prompt": "q", "chosen": [{"role": "user", "content": "x"}], "rejected": "b"},           # 5 not assistant
        {"prompt": "q", "rejected": "b"},                                                         # 6 missing
        {"prompt": "q", "chosen": "nul\u0000", "rejected": "b"},                                  # 7 NUL
    ]
    f = tmp_path / "bad.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in lines) + "{oops\n")
    (report,) = ingest_files(store, [f])
    assert report.counts.new_pairs == 1 and report.counts.quarantined == 7
    assert quarantine(store) == [
        (2, "chosen", "is empty"), (3, "chosen", "must be a string or a list of messages, got integer"),
        (4, "prompt[0].content", "must be a string, got integer"),
        (5, "chosen", "must be one assistant message, got 1 message(s) (user)"), (6, "chosen", "missing field"),
        (7, "chosen", "contains a NUL byte"), (8, None, "invalid JSON")]
    raw = store.con.execute("SELECT raw FROM quarantine WHERE line = 2").fetchone()[0]
    assert json.loads(raw) == lines[1]  # the input row as it was, not our conversion
    with pytest.raises(LabelerError, match=r"bad.jsonl:2: line 2, field chosen: is empty \(and 4\+ more\); nothing"):
        ingest_files(store, [f], strict=True)


def test_hh_rows_that_differ_before_the_last_turn_are_quarantined(store, tmp_path):
    rows = [{"chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: d",
             "rejected": "\n\nHuman: a\n\nAssistant: x\n\nHuman: c\n\nAssistant: d"},
            {"chosen": "Apples, no markers", "rejected": "Bananas"}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "hh.jsonl")
    ingest_files(store, [tmp_path / "hh.jsonl"])
    assert quarantine(store) == [(1, "chosen", "differs from the other response before its last assistant turn"),
                                 (2, "chosen", "shares no beginning (the prompt) with rejected")]


def test_our_layout_with_a_message_list_prompt(store, tmp_path):
    rows = [{"prompt": MULTI_TURN, "response_a": "Paris.", "response_b": [{"role": "assistant", "content": "Rome."}],
             "label": "a"}]
    datasets.Dataset.from_list(rows).to_json(tmp_path / "m.jsonl")
    (report,) = ingest_files(store, [tmp_path / "m.jsonl"])
    assert report.layout == "pairs" and report.counts.new_pairs == 1
    (pair,) = next(iter(pairs(store).values()))
    assert (pair["a"], pair["b"], pair["label"], pair["messages"]) == ("Paris.", "Rome.", "A", MULTI_TURN)


def make_cached_hub_dataset(cache: Path, repo: str, rows: list[dict]) -> None:
    """What `datasets.load_dataset(repo)` leaves in the cache after a download: <ns>___<name>/<config>/<version>/
    <commit>/<name>-<split>.arrow with its dataset_info.json (built from a local file, no network)."""
    from datasets.packaged_modules.json.json import Json

    source = cache.parent / "hub-source.jsonl"
    datasets.Dataset.from_list(rows).to_json(source)
    namespace, name = repo.split("/")
    builder = Json(data_files={"train": str(source)}, dataset_name=f"{namespace}___{name}", cache_dir=str(cache),
                   hash="0123456789abcdef", config_id="default")
    builder.download_and_prepare()
    for arrow in Path(builder.cache_dir).glob(f"{namespace}___{name}-*.arrow"):
        arrow.rename(arrow.with_name(arrow.name.replace(f"{namespace}___", "")))


def test_a_hub_dataset_from_the_local_cache_and_a_missing_one(store, tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    make_cached_hub_dataset(cache, "someone/hh-prefs", HH[:3])
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    online = datasets.config.HF_HUB_OFFLINE
    (report,) = ingest_files(store, [Path("someone/hh-prefs")])
    assert (report.path, report.layout, report.counts.new_pairs) == ("hf:someone/hh-prefs:train", "trl-implicit", 3)
    assert chosen_of(pairs(store)["What is 2 + 2?"][0]) == "It is 4."
    with pytest.raises(LabelerError, match=r"someone/absent: no such file, and no dataset 'someone/absent' in the "
                                           r"local Hugging Face cache"):
        ingest_files(store, [Path("someone/absent")])
    assert datasets.config.HF_HUB_OFFLINE == online and "HF_HUB_OFFLINE" not in os.environ  # set only while loading


def test_the_cli_announces_the_layout_and_refuses_a_plain_folder(tmp_path):
    datasets.Dataset.from_list(HH[:2]).save_to_disk(tmp_path / "hh")
    db = tmp_path / "l.duckdb"
    result = run("ingest", tmp_path / "hh", "--db", db)
    assert result.exit_code == 0, result.output
    assert "layout trl-implicit (TRL implicit prompt: chosen / rejected" in " ".join(result.output.split())
    (tmp_path / "plain").mkdir()
    bad = run("ingest", tmp_path / "plain", "--db", db)
    assert bad.exit_code == 1 and bad.stderr.startswith(f"Error: {tmp_path / 'plain'}: is a directory")
    missing = run("ingest", "data/typo.jsonl", "--db", db)
    assert missing.exit_code == 1 and missing.stderr == "Error: data/typo.jsonl: no such file\n"


def test_eval_reads_the_preference_of_trl_rows(tmp_path):
    rows = [{"prompt": f"What is {i} + {i}?", "chosen": f"It is {2 * i}.", "rejected": f"It is {2 * i + 1}."}
            for i in range(6)]
    datasets.Dataset.from_list(rows).to_parquet(tmp_path / "gold.parquet")
    result = run("eval", tmp_path / "gold.parquet", "--db", tmp_path / "e.duckdb", "--backend", "fake",
                 "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 6 and sum(metrics["confusion"][h]["A"] + metrics["confusion"][h]["B"]
                                     for h in metrics["confusion"]) == 6
