"""Take docs/images/review.png, the README's picture of Argilla's review page, from a real run.

    python docs/review_screenshot.py --db labels.duckdb    # a store `labeler annotate examples/pairs.jsonl` made

Starts a local Argilla server (`labeler review serve`, in a temp data dir, on a free port), pushes the store's
doubtful labels, logs in as the owner in Debian's chromium (Playwright; the test extra), opens the first record,
takes the screenshot and stops the server.
"""

import argparse
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from labeler.review.server import local_credentials

OUT = Path(__file__).parent / "images" / "review.png"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def labeler(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "labeler", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"labeler {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(url: str, username: str, password: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        try:
            page.goto(f"{url}/sign-in")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("examples", exact=True).click()
            page.wait_for_url("**/annotation-mode**")
            page.get_by_role("button", name="Submit").wait_for()
            page.wait_for_timeout(1500)  # let the fonts and the suggestion badge settle
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store with model labels")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        labeler("review", "serve", "--port", str(free_port()), "--data-dir", data_dir)
        try:
            creds = local_credentials(Path(data_dir))
            labeler("review", "push", "--db", args.db, "--dataset", "examples", "--url", creds.url,
                    "--api-key", creds.api_key)
            screenshot(creds.url, creds.username, creds.password, args.out)
        finally:
            labeler("review", "stop", "--data-dir", data_dir)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
