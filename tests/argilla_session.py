"""One real Argilla server per test session, started through `labeler review serve`, plus reviewer helpers.

Both test_review.py and test_review_browser.py call `session_server` from their session fixtures; the server
is started once (on a free loopback port, in a temporary data dir) and stopped at the end of the session.
The server's venv comes from the normal cache dir (`LABELER_CACHE_DIR`), so only the first run installs it.
"""

import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
from typer.testing import CliRunner

from labeler.cli import app
from labeler.review.server import Credentials, local_credentials

_started: "ReviewServer | None" = None


@dataclass
class ReviewServer:
    port: int
    data_dir: Path
    serve_output: str

    @property
    def creds(self) -> Credentials:
        return local_credentials(self.data_dir)

    @property
    def url(self) -> str:
        return self.creds.url

    def cli_args(self) -> list[str]:
        return ["--url", self.url, "--api-key", self.creds.api_key]

    def owner(self):
        import argilla as rg

        return rg.Argilla(api_url=self.url, api_key=self.creds.api_key)

    def add_reviewer(self, username: str, password: str = "reviewer-pass-1"):
        """Create an annotator in the `reviewers` workspace; returns an SDK client logged in as them."""
        import argilla as rg

        owner = self.owner()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if owner.users(username) is None:
                user = rg.User(username=username, password=password, role="annotator", client=owner).create()
                user.add_to_workspace(owner.workspaces("reviewers"))
        token = httpx.post(f"{self.url}/api/v1/token", data={"username": username, "password": password}).json()
        me = httpx.get(f"{self.url}/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"}).json()
        return rg.Argilla(api_url=self.url, api_key=me["api_key"])

    def records(self, dataset: str) -> list[dict]:
        """Every record of `dataset` as raw JSON (with responses and suggestions)."""
        owner = self.owner()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            remote = owner.datasets(dataset, workspace="reviewers")
        if remote is None:
            return []
        reply = owner.http_client.get(f"/api/v1/datasets/{remote.id}/records",
                                      params={"limit": 1000, "include": ["responses", "suggestions"]})
        reply.raise_for_status()
        assert reply.json()["total"] <= 1000
        return reply.json()["items"]

    def answer(self, reviewer, dataset: str, pair_id: str, label: str | None, note: str | None = None,
               status: str = "submitted") -> None:
        """Respond to one record as `reviewer`, through the SDK. A discard sends `values: {}` (see README)."""
        from argilla._models import UserResponseModel

        record_id = next(r["id"] for r in self.records(dataset) if r["external_id"] == pair_id)
        values = {}
        if label:
            values["preference"] = {"value": label}
        if note:
            values["better_rationale"] = {"value": note}
        reviewer.api.records.create_record_response(
            record_id, UserResponseModel(values=values, status=status, user_id=reviewer.me.id))


def session_server(request, tmp_path_factory) -> ReviewServer:
    global _started
    if _started is None:
        port, data_dir = free_port(), tmp_path_factory.mktemp("argilla")
        result = CliRunner().invoke(app, ["review", "serve", "--port", str(port), "--data-dir", str(data_dir)])
        assert result.exit_code == 0, result.output
        _started = ReviewServer(port, data_dir, result.output)
        request.addfinalizer(_stop)
    return _started


def _stop() -> None:
    global _started
    if _started is not None:
        result = CliRunner().invoke(app, ["review", "stop", "--data-dir", str(_started.data_dir)])
        _started = None
        assert result.exit_code == 0, result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
