"""A local HTTP server on 127.0.0.1 that plays a script of answers to an OpenAI-compatible client: recorded bodies
(tests/data/openai_replay/), HTTP errors, and faults a real server shows now and then (a hang, a connection closed
mid-response, a body that is not JSON). Every request body it gets is kept in `requests`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BODIES = Path(__file__).parent / "data" / "openai_replay"


def recorded(name: str) -> dict:
    return json.loads((BODIES / f"{name}.json").read_text())


def answer(status: int = 200, body: dict | str | None = None, headers: dict | None = None) -> dict:
    return {"status": status, "body": body, "headers": headers or {}}


HANG = {"fault": "hang"}  # no answer until the client gives up
CLOSE = {"fault": "close"}  # the connection closed before any answer
TRUNCATED = {"fault": "truncated"}  # headers promise a body the connection closes half-way through


class Replay:
    """`script(request_body) -> answer` decides each answer; a list is played in order (the last repeats)."""

    def __init__(self, script: list[dict] | Callable[[dict], dict]):
        self.script, self.requests, self.lock = script, [], threading.Lock()

    def next(self, body: dict) -> dict:
        with self.lock:
            self.requests.append(body)
            if callable(self.script):
                return self.script(body)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


def _handler(replay: Replay):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.loads(raw or b"{}")
            body["_path"], body["_auth"] = self.path, self.headers.get("authorization")
            plan = replay.next(body)
            fault = plan.get("fault")
            if fault == "hang":  # (an Event's wait: tests patch time.sleep away to skip the client's backoff)
                threading.Event().wait(3)
                self.close_connection = True
                return
            if fault == "close":
                self.close_connection = True
                self.connection.close()
                return
            text = plan.get("body")
            data = (text if isinstance(text, str) else json.dumps(text or {})).encode()
            self.send_response(plan.get("status", 200))
            self.send_header("content-type", "application/json")
            for key, value in plan.get("headers", {}).items():
                self.send_header(key, value)
            if fault == "truncated":
                data = json.dumps(recorded("openai_chat_direct")).encode()
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.close()
                return
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def replay_server(script: list[dict] | Callable[[dict], dict]):
    """Serve `script`; yields (base URL, the Replay with the requests it got)."""
    replay = Replay(script)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", replay
    finally:
        server.shutdown()
        server.server_close()
