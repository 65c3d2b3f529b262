"""`annotate --ray` / `eval --ray` on a real local Ray (2 CPUs, one session for the module): the same judgments as
one process, an actor killed mid-batch is replaced with nothing lost or doubled, a killed driver resumes.
Needs the ray extra (`.ci/setup` installs it); tests/test_ray_cli.py covers what needs no Ray."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

import duckdb
import pytest

ray = pytest.importorskip("ray")

from helpers import run, write_pairs  # noqa: E402
from labeler import pipeline  # noqa: E402
from labeler.errors import LabelerError  # noqa: E402
from labeler.scale import CRASH_ONCE_ENV, RayOptions, RayRunner  # noqa: E402
from labeler.store import Store  # noqa: E402
from schemas import Judgment  # noqa: E402

pytestmark = pytest.mark.timeout(300)
PER_RUN = {"run_id", "created_at"}  # what differs between two runs of the same judge by design


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with 2 CPUs for the whole module; `crash_flag`: create it to make one actor die mid-batch."""
    crash_flag = tmp_path_factory.mktemp("ray") / "crash-once"
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": {CRASH_ONCE_ENV: str(crash_flag)}})
    yield {"crash_flag": crash_flag, "address": ray.get_runtime_context().gcs_address}
    ray.shutdown()


def stored(db) -> dict[str, list[tuple]]:
    """Every judgment (less run id and time) and sample of the store, in pair order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = ", ".join(c for c in Judgment.model_fields if c not in PER_RUN)
        return {"judgments": con.execute(f"SELECT {columns} FROM judgments ORDER BY ALL").fetchall(),
                "samples": con.execute("SELECT * FROM samples ORDER BY ALL").fetchall()}
    finally:
        con.close()


def one_process_and_ray(tmp_path, data, *options):
    """`labeler annotate DATA OPTIONS` into one store, then with `--ray local` into another."""
    here, there = tmp_path / "here.duckdb", tmp_path / "ray.duckdb"
    run("annotate", data, "--db", here, "-q", *options, ok=True)
    run("annotate", data, "--db", there, "-q", *options, "--ray", "local", "--num-cpus", "2", ok=True)
    con = duckdb.connect(str(there), read_only=True)
    assert json.loads(con.execute("SELECT params FROM runs").fetchone()[0])["ray"]["address"] == "local"
    con.close()
    return stored(here), stored(there)


@pytest.mark.parametrize("mode", [["--mode", "direct"], ["--mode", "cot", "-k", "3"]])
def test_fake_backend_on_ray_stores_what_one_process_stores(cluster, tmp_path, mode):
    data = write_pairs(tmp_path / "d.jsonl", 11)
    here, there = one_process_and_ray(tmp_path, data, "--backend", "fake", "--batch-size", "3", *mode)
    assert len(here["judgments"]) == 11 and len(here["samples"]) == 11 * 2 * (3 if "cot" in mode else 1)
    assert there == here


@pytest.mark.parametrize("mode", [["--mode", "direct"], ["--mode", "cot", "-k", "2", "--max-new-tokens", "6"]])
def test_tiny_llama_on_ray_stores_what_one_process_stores(cluster, tmp_path, tiny_llama, mode):
    data = write_pairs(tmp_path / "d.jsonl", 5)
    here, there = one_process_and_ray(tmp_path, data, "--model", tiny_llama, "--batch-size", "2", *mode)
    assert len(here["judgments"]) == 5 and {row[7] for row in here["judgments"]} <= {"A", "B", None}
    assert there == here


def test_an_actor_killed_mid_batch_is_replaced_and_nothing_is_lost_or_doubled(cluster, tmp_path):
    data = write_pairs(tmp_path / "d.jsonl", 12)
    options = ("--backend", "fake", "--mode", "cot", "-k", "2", "--batch-size", "2")
    run("annotate", data, "--db", tmp_path / "here.duckdb", "-q", *options, ok=True)
    flag = cluster["crash_flag"]
    flag.touch()
    with Store(tmp_path / "ray.duckdb") as store:
        judge = pipeline.judge_for(store, "fake", mode="cot", samples=2, batch_size=2)
        result = pipeline.annotate(store, [data], judge, batch_size=2, runner=RayRunner(RayOptions()))
        runs = store.status().runs
    assert not flag.exists() and flag.with_name(flag.name + ".fired").exists()  # an actor did die mid-batch
    assert sorted(j.pair_id for j in result.judged) == [f"p{i:03d}" for i in range(12)]
    assert [(r.status, r.n_done) for r in runs] == [("finished", 12)]
    assert stored(tmp_path / "ray.duckdb") == stored(tmp_path / "here.duckdb")


def test_a_killed_driver_leaves_whole_batches_and_a_rerun_resumes(cluster, tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 24), tmp_path / "l.duckdb"
    options = ["--backend", "fake", "--mode", "cot", "-k", "2", "--batch-size", "2", "-q"]
    # A driver of its own (its own local Ray, which passes the delay on to its actors), in a session of its own so
    # that what its Ray leaves behind can be stopped with it.
    driver = subprocess.Popen([sys.executable, "-m", "labeler", "annotate", str(data), "--db", str(db), *options,
                               "--ray", "local", "--num-cpus", "2"], env={**os.environ, "LABELER_FAKE_DELAY": "1"},
                              start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and done_so_far(db) < 2:  # a second a batch: 6 s for all 24 pairs
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    partial = stored(db)
    assert 2 <= len(partial["judgments"]) < 24
    assert len(partial["samples"]) == 4 * len(partial["judgments"])  # whole pairs only
    run("annotate", "--db", db, *options, "--ray", "local", ok=True)
    run("annotate", data, "--db", tmp_path / "here.duckdb", *options, ok=True)
    assert stored(db) == stored(tmp_path / "here.duckdb")
    con = duckdb.connect(str(db), read_only=True)
    runs = con.execute("SELECT status, n_done FROM runs ORDER BY started_at").fetchall()
    assert runs[0][0] == "interrupted" and runs[1] == ("finished", 24 - runs[0][1])


def done_so_far(db) -> int:
    """Pairs the running driver has stored, read the way `labeler status` reads them (between its batches)."""
    status = subprocess.run([sys.executable, "-m", "labeler", "status", "--db", str(db), "--json"],
                            capture_output=True, text=True)
    runs = json.loads(status.stdout)["runs"] if status.returncode == 0 else []
    return runs[0]["n_done"] if runs else 0


def test_a_driver_joins_a_running_cluster_by_address(cluster, tmp_path):
    data, db = write_pairs(tmp_path / "d.jsonl", 6), tmp_path / "l.duckdb"
    joined = subprocess.run([sys.executable, "-m", "labeler", "annotate", str(data), "--db", str(db), "--backend",
                             "fake", "--ray", cluster["address"], "--actors", "1"], capture_output=True, text=True)
    assert joined.returncode == 0, joined.stderr
    assert "Annotated 6 pairs" in joined.stdout
    con = duckdb.connect(str(db), read_only=True)
    params = json.loads(con.execute("SELECT params FROM runs").fetchone()[0])
    assert params["ray"]["address"] == cluster["address"] and params["ray"]["actors"] == 1
    assert con.execute("SELECT count(*) FROM judgments").fetchone()[0] == 6


def test_eval_on_ray_reports_what_one_process_reports(cluster, tmp_path):
    from test_cli_eval import write_gold

    gold = write_gold(tmp_path / "gold.jsonl", 10)
    reports = []
    for name, ray_options in (("here", []), ("ray", ["--ray", "local"])):
        out = tmp_path / name
        run("eval", gold, "--db", tmp_path / f"{name}.duckdb", "--backend", "fake", "--mode", "cot", "-k", "2",
            "--batch-size", "3", "--out", out, "-q", *ray_options, ok=True)
        reports.append(json.loads((out / "metrics.json").read_text()))
    assert reports[0]["n"] == 10 and reports[1] == reports[0]


def test_a_worker_whose_judge_differs_is_one_error_and_stores_nothing(cluster, tmp_path):
    data = write_pairs(tmp_path / "d.jsonl", 4)
    with Store(tmp_path / "l.duckdb") as store:
        judge = pipeline.judge_for(store, "fake", batch_size=2)
        other = pipeline.JudgeRecipe("fake", "other-weights", judge.config, 2)  # as if a node had other files
        judge.recipe = other
        with pytest.raises(LabelerError, match=f"has judge key {other.build().judge_key}, the driver's has "
                                               f"{judge.judge_key}: give every machine the same model files"):
            pipeline.annotate(store, [data], judge, batch_size=2, runner=RayRunner(RayOptions()))
        assert store.count("judgments") == 0
        assert [r.status for r in store.status().runs] == ["interrupted"]


def test_an_address_where_no_ray_listens_is_one_error_line_at_once(tmp_path):
    import socket

    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    data, db = write_pairs(tmp_path / "d.jsonl", 2), tmp_path / "l.duckdb"
    result = subprocess.run([sys.executable, "-m", "labeler", "annotate", str(data), "--db", str(db), "--backend",
                             "fake", "--ray", f"127.0.0.1:{port}", "-q"], capture_output=True, text=True,
                            timeout=120)  # ray.init alone retries such an address for ever
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (f"Error: --ray 127.0.0.1:{port}: no Ray cluster there (cannot "
                                                       f"connect to 127.0.0.1:{port}: Connection refused)")
