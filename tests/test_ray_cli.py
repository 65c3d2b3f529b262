"""The `--ray` options where no Ray is needed: bad values are usage errors, and without the ray extra `--ray` is
one error line (the core install has no Ray). The Ray runs themselves: tests/test_ray.py."""

import sys

import pytest

from helpers import run, write_pairs
from labeler.store import Store


def test_ray_without_the_extra_is_one_error_line_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: `import ray` raises ImportError
    data, db = write_pairs(tmp_path / "d.jsonl", 3), tmp_path / "l.duckdb"
    result = run("annotate", data, "--db", db, "--backend", "fake", "--ray", "local", "-q")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: --ray (on every machine of the cluster) needs the ray extra (ray not "
                                     "installed): pip install 'labeler[ray]'")
    assert not db.exists()  # refused before the store is opened


@pytest.mark.parametrize("options, message", [
    (["--actors", "0"], "need --actors >= 1"),
    (["--num-gpus-per-actor", "-1"], "--num-gpus-per-actor >= 0"),
    (["--num-cpus", "4"], "only with --ray local"),
])
def test_bad_ray_options_are_usage_errors(tmp_path, options, message):
    command = "annotate" if "--actors" not in options else "eval"
    args = [write_pairs(tmp_path / "d.jsonl", 2, labeled=True), "--db", tmp_path / "l.duckdb", "--backend", "fake"]
    result = run(command, *args, "--ray", "auto", *options)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "l.duckdb").exists()  # refused before the store is touched


@pytest.mark.parametrize("backend", ["fake", "transformers"])
def test_a_judge_is_rebuilt_elsewhere_from_its_pickled_recipe_under_the_same_key(tmp_path, tiny_llama, backend):
    import pickle

    from labeler import pipeline

    with Store(tmp_path / "l.duckdb") as store:
        judge = pipeline.judge_for(store, backend, tiny_llama, mode="cot", samples=2, batch_size=3, max_new_tokens=7)
    copy = pickle.loads(pickle.dumps(judge.recipe)).build()  # what a Ray actor does with it
    assert copy is not judge and copy.recipe == judge.recipe
    assert (copy.judge_key, copy.judge_id, copy.config) == (judge.judge_key, judge.judge_id, judge.config)


@pytest.mark.parametrize("args, message", [
    (["--ray", "not:an:address"], "--ray 'not:an:address': not local, auto, HOST:PORT or ray://HOST:PORT"),
    (["--ray", "--quiet"], "--ray needs an address: local, auto or HOST:PORT, got '--quiet' (an option"),
    (["--ray", "--actors", "2"], "--ray needs an address: local, auto or HOST:PORT, got '--actors' (an option"),
])
def test_a_bad_ray_address_is_a_usage_error_not_a_traceback(tmp_path, args, message):
    result = run("annotate", "--db", tmp_path / "l.duckdb", "--backend", "fake", *args)
    assert result.exit_code == 2 and message in " ".join(result.output.split()).replace("│ ", "").replace(" │", "")
    assert "Traceback" not in result.output and not (tmp_path / "l.duckdb").exists()


def test_an_actor_larger_than_any_ray_node_is_refused_instead_of_waited_for():
    from labeler.errors import LabelerError
    from labeler.scale import RayOptions, check_resources

    nodes = [{"Alive": True, "Resources": {"CPU": 2.0}}, {"Alive": False, "Resources": {"CPU": 128.0}}]
    check_resources(nodes, RayOptions("local", num_cpus_per_actor=2))
    with pytest.raises(LabelerError, match=r"--num-cpus-per-actor 64: no node of the Ray cluster has that many CPUs "
                                           r"\(the largest has 2\)"):
        check_resources(nodes, RayOptions("local", num_cpus_per_actor=64))
    with pytest.raises(LabelerError, match="--num-gpus-per-actor 1: no node .* GPUs"):
        check_resources(nodes, RayOptions("local", num_gpus_per_actor=1))
