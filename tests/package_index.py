"""A PEP 503 package index served over HTTP on 127.0.0.1 from a folder, for tests that run the real pip against
small wheels built here (the machine's pip configuration switched off)."""

import functools
import http.server
import os
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path


class _Index(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@contextmanager
def serve_index(root: Path, monkeypatch, tmp_path: Path):
    """Serve `root` (with `simple/<package>/index.html` pages) and point pip at it; yields the requested paths."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Index, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX", "PIP_REQUIRE_HASHES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine-wide index, find-links or constraints
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple")
    monkeypatch.setenv("PIP_CACHE_DIR", str(tmp_path / "pip-cache"))
    try:
        yield server.requests
    finally:
        server.shutdown()
        server.server_close()


def publish_wheel(root: Path, package: str, version: str, files: dict[str, bytes], requires: str = "") -> Path:
    """Build `package`'s py3 wheel holding `files` into `root/files` and list it on its index page."""
    module = package.replace("-", "_")
    wheel_name = f"{module}-{version}-py3-none-any.whl"
    (root / "files").mkdir(parents=True, exist_ok=True)
    info = f"{module}-{version}.dist-info"
    with zipfile.ZipFile(root / "files" / wheel_name, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
                                           + (f"Requires-Dist: {requires}\n" if requires else ""))
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    page = root / "simple" / package
    page.mkdir(parents=True, exist_ok=True)
    (page / "index.html").write_text(f'<html><body><a href="../../files/{wheel_name}">{wheel_name}</a></body></html>')
    return root / "files" / wheel_name
