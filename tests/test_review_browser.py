"""A reviewer answers in Argilla's web UI (Playwright driving Debian's chromium); `labeler review pull` reads it back.

Needs /usr/bin/chromium (`.ci/setup` installs it). Playwright's own browser download is never used.
"""

import re
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import sync_playwright

from argilla_session import session_server
from helpers import run, write_pairs

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def server(request, tmp_path_factory):
    return session_server(request, tmp_path_factory)


def test_reviewer_submits_in_the_browser_and_pull_stores_it(server, tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run .ci/setup (apt-get install -y chromium)"
    db = tmp_path / "l.duckdb"
    assert run("annotate", write_pairs(tmp_path / "d.jsonl", 4), "--db", db, "--backend", "fake", "-q").exit_code == 0
    pushed = run("review", "push", "--db", db, "--dataset", "browser", "--threshold", "1.0", "--audit-rate", "1.0",
                 *server.cli_args())
    assert pushed.exit_code == 0 and "pushed 4 records" in pushed.stdout, pushed.output
    con = duckdb.connect(str(db), read_only=True)
    judged = dict(con.execute("SELECT pair_id, judge_label FROM review_items WHERE dataset = 'browser'").fetchall())
    con.close()
    server.add_reviewer("carol", password="carol-pass-123")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(f"{server.url}/sign-in")
            page.get_by_label("Username").fill("carol")
            page.get_by_label("Password").fill("carol-pass-123")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("browser", exact=True).click()  # the dataset card on the home page
            page.wait_for_url("**/annotation-mode**")
            submit = page.get_by_role("button", name="Submit")
            submit.wait_for()
            prompt = page.get_by_text(re.compile(r"^What is \d+ \+ \d+\?$")).first.inner_text()
            pair_id = f"p{int(prompt.split()[2]):03d}"
            choice = "B" if judged[pair_id] == "A" else "A"  # not the pre-selected suggestion
            page.get_by_text(f"{choice} is better", exact=True).click()
            note = page.get_by_label("Question: better_rationale").locator("[contenteditable=true]")
            note.click()
            note.press_sequentially("Checked the sum by hand.")
            with page.expect_response(lambda r: "/responses" in r.url and r.request.method in ("POST", "PUT")) as sent:
                submit.click()
            assert sent.value.ok, sent.value.text()
        finally:
            page.screenshot(path=str(tmp_path / "review.png"))
            browser.close()

    pulled = run("review", "pull", "--db", db, "--dataset", "browser", *server.cli_args())
    assert pulled.exit_code == 0 and "human labels: 1 new" in pulled.stdout, pulled.output
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT pair_id, annotator, label, note, origin FROM gold_labels").fetchall() == [
        (pair_id, "carol", choice, "Checked the sum by hand.", "argilla:browser")]
    con.close()
    status = run("status", "--db", db, "--json")
    assert '"answered": 1' in status.stdout and '"human-labeled": 1' in status.stdout
