"""Custom criteria: `--criteria TEXT` and `--template FILE` change what the judge is asked, are part of the judge
key, are recorded in provenance, and a template that cannot judge is one `Error:` line before anything runs."""

import json

import duckdb
import pytest

from helpers import run, write_pairs
from labeler.judge.backends import make_backend
from labeler.judge.judge import Judge, JudgeConfig
from labeler.judge.prompts import DEFAULT_CRITERIA, MODES, builtin_source, render
from schemas import Pair

PAIR = Pair(pair_id="p", prompt="Capital of France?", response_a="Paris.", response_b="Lyon.",
            prompt_messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"}])
MINIMAL = """{% block system %}Judge: {{ criteria }}.{% endblock %}
{% block user %}{% for m in messages or [] %}<{{ m.role }}> {{ m.content }}
{% endfor %}{{ prompt }} | A: {{ response_a }} | B: {{ response_b }}{% endblock %}
{% block assistant_prefix %}Verdict: [[{% endblock %}"""


def judge(**config) -> Judge:
    return Judge(make_backend("fake"), JudgeConfig(**config))


@pytest.mark.parametrize("mode", MODES)
def test_the_shipped_templates_ask_for_the_default_criteria_once(mode):
    assert builtin_source(mode).count(DEFAULT_CRITERIA) == 1


def test_criteria_change_the_question_and_the_key_but_not_the_default_key():
    default, concise = judge(), judge(criteria="shorter and more polite")
    again = judge(criteria="shorter and more polite")
    assert default.template_hash == judge(criteria=None).template_hash and concise.judge_key == again.judge_key
    assert len({default.judge_key, concise.judge_key, judge(criteria="safer").judge_key}) == 3
    system = render("direct", PAIR, "AB", template=concise.prompt).system
    assert "which one is better: shorter and more polite." in system and DEFAULT_CRITERIA not in system
    assert DEFAULT_CRITERIA in render("direct", PAIR, "AB").system


def test_a_custom_template_renders_the_pair_and_its_messages(tmp_path):
    custom = judge(template=MINIMAL, criteria="brevity")
    r = render("direct", PAIR, "BA", template=custom.prompt)
    assert (r.system, r.assistant_prefix) == ("Judge: brevity.", "Verdict: [[")
    assert r.user == "<system> Be brief.\n<user> Capital?\nCapital of France? | A: Lyon. | B: Paris."
    assert custom.judge_key != judge(template=MINIMAL).judge_key  # criteria default to the shipped wording


@pytest.fixture
def data(tmp_path):
    return write_pairs(tmp_path / "d.jsonl", 3)


def test_annotate_with_criteria_records_them_and_resumes_by_key(data, tmp_path):
    db = tmp_path / "c.duckdb"
    run("annotate", data, "--db", db, "--backend", "fake", ok=True)
    run("annotate", "--db", db, "--backend", "fake", "--criteria", "more concise", ok=True)  # judged again
    again = run("annotate", "--db", db, "--backend", "fake", "--criteria", "more concise", ok=True)
    assert "Nothing to judge" in again.output
    con = duckdb.connect(str(db), read_only=True)
    hashes = con.execute("SELECT template_hash, count(*) FROM judgments GROUP BY ALL ORDER BY 1").fetchall()
    params = [json.loads(p) for (p,) in con.execute("SELECT params FROM runs ORDER BY started_at").fetchall()]
    assert len(hashes) == 2 and all(n == 3 for _, n in hashes)
    assert (params[0]["criteria"], params[1]["criteria"]) == (None, "more concise")


def test_annotate_with_a_template_file(data, tmp_path):
    template = tmp_path / "mine.jinja"
    template.write_text(MINIMAL)
    db = tmp_path / "t.duckdb"
    run("annotate", data, "--db", db, "--backend", "fake", "--template", template, ok=True)
    con = duckdb.connect(str(db), read_only=True)
    (params,) = con.execute("SELECT params FROM runs").fetchone()
    assert json.loads(params)["template"] == MINIMAL and con.execute("SELECT count(*) FROM judgments").fetchone() == (3,)


@pytest.mark.parametrize("source, message", [
    ("{% block system %}x{% endblock %}{% block assistant_prefix %}{% endblock %}",
     "the template has no user block (a judge template defines the blocks system, user, assistant_prefix"),
    (MINIMAL.replace("{{ criteria }}", "{{ rubric }}"), "the template uses unknown variable(s) rubric"),
    (MINIMAL.replace("{{ response_b }}", "-"), "the template must show {{ prompt }} (or messages), {{ response_a }}"),
    ("{% block system %}{% if %}{% endblock %}", "template syntax error on line 1"),
])
def test_a_template_that_cannot_judge_is_one_error_line_before_anything_runs(data, tmp_path, source, message):
    template = tmp_path / "bad.jinja"
    template.write_text(source)
    db = tmp_path / "b.duckdb"
    result = run("annotate", data, "--db", db, "--backend", "fake", "--template", template)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {template}: {message}")
    assert not db.exists() or duckdb.connect(str(db)).execute("SELECT count(*) FROM pairs").fetchone() == (0,)


def test_criteria_need_a_place_in_a_custom_template(data, tmp_path):
    template = tmp_path / "fixed.jinja"
    template.write_text(MINIMAL.replace("{{ criteria }}", "helpfulness"))
    result = run("annotate", data, "--db", tmp_path / "x.duckdb", "--backend", "fake", "--template", template,
                 "--criteria", "brevity")
    assert result.exit_code == 2 and "criteria need a template that uses {{ criteria }}" in result.output
    missing = run("annotate", "--db", tmp_path / "x.duckdb", "--backend", "fake", "--template", tmp_path / "no.jinja")
    assert missing.exit_code == 1 and "no.jinja: cannot read the template: No such file or directory" in missing.stderr


def test_eval_takes_criteria_too(tmp_path):
    gold = write_pairs(tmp_path / "g.jsonl", 4, labeled=True)
    result = run("eval", gold, "--db", tmp_path / "e.duckdb", "--backend", "fake", "--criteria", "more accurate")
    assert result.exit_code == 0, result.output
