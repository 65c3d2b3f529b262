"""A local Argilla server for `labeler review`: its own venv, noida-db for Elasticsearch and Redis, loopback only.

argilla-server 2.8.0 needs click<8.2 and datasets<5, which clash with labeler's stack, so it gets a virtual
environment of its own under the cache dir. Everything else lives in the data dir (default <cache>/argilla):
`home/` (Argilla's SQLite database), `search/` (noida-db's data), `logs/`, `run/` (pid files, ports) and
`credentials.json` (mode 0600). Each process runs in its own session, so `stop` ends it with its children.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from labeler.errors import LabelerError
from labeler.paths import atomic_write, cache_root
from labeler.review import processes as proc

HOST = proc.HOST
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "datasets<5", "noida-db==0.2.3")
OWNER = "owner"
WORKSPACE = "reviewers"
# Start order (stop runs it backwards) and a word that must be in each process's command line, so a pid
# file left behind never makes us signal an unrelated process that reused the pid.
COMPONENTS = {"search": "noida-db", "server": "argilla_server", "worker": "argilla_server"}


def default_data_dir() -> Path:
    return cache_root() / "argilla"


def venv_dir() -> Path:
    return cache_root() / "argilla-server-venv"


@dataclass
class Credentials:
    url: str
    username: str
    password: str
    api_key: str
    workspace: str

    @classmethod
    def load(cls, path: Path) -> "Credentials | None":
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, path: Path) -> None:
        atomic_write(path, json.dumps(asdict(self), indent=2), mode=0o600)

    @property
    def masked_key(self) -> str:
        return f"{self.api_key[:4]}…{self.api_key[-4:]}"


@dataclass
class ServeResult:
    url: str
    credentials: Credentials
    credentials_path: Path
    reused: bool
    seconds: float


class Paths:
    def __init__(self, data_dir: Path):
        self.root = data_dir.expanduser().resolve()
        self.home, self.search, self.logs, self.run = (self.root / d for d in ("home", "search", "logs", "run"))
        self.credentials = self.root / "credentials.json"
        self.state = self.run / "server.json"

    def create(self) -> None:
        for d in (self.root, self.home, self.search, self.logs, self.run):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"


def serve(port: int, data_dir: Path, timeout: float = 180.0,
          say: Callable[[str], None] = lambda m: None) -> ServeResult:
    """Start (or reuse) the server; returns once `/api/v1/version` answers."""
    started = time.perf_counter()
    paths = Paths(data_dir)
    paths.create()
    with proc.locked(paths.run / "serve.lock"):
        state = running_state(paths)
        if state:
            creds = Credentials.load(paths.credentials)
            if creds:
                return ServeResult(state["url"], creds, paths.credentials, True, time.perf_counter() - started)
        # noida-db writes its data to disk now and then and on SIGTERM: after a crash, rebuild the index.
        search_crashed = paths.pid_file("search").exists() and not _pid_alive(paths, "search")
        if stop_processes(paths) or search_crashed:
            say("restarting: the previous server did not stop cleanly")
        if not proc.port_free(port):
            raise LabelerError(f"{HOST}:{port} is in use by another program; choose another --port")
        python = ensure_venv(say)
        try:
            creds = _start(paths, python, port, timeout, search_crashed, say)
        except BaseException:  # a half-started server (or Ctrl-C) leaves nothing running behind
            stop_processes(paths)
            raise
    return ServeResult(creds.url, creds, paths.credentials, False, time.perf_counter() - started)


def _start(paths: Paths, python: Path, port: int, timeout: float, search_crashed: bool,
           say: Callable[[str], None]) -> Credentials:
    es_port, redis_port = proc.free_ports(2)
    env = _server_env(paths, es_port, redis_port)
    _spawn(paths, "search", [str(_noida_binary(python)), "start", "--only", "elasticsearch,redis",
                             "--elasticsearch-port", str(es_port), "--redis-port", str(redis_port),
                             "--data-dir", str(paths.search), "--host", HOST], env)
    creds = Credentials.load(paths.credentials)
    fresh = creds is None
    if fresh:  # runs while noida-db starts: it needs only the SQLite database
        say("first start: creating the database and the owner user")
        creds = _create_owner(python, env, port)
    _wait(paths, ["search"], lambda: proc.answers(f"http://{HOST}:{es_port}/") and proc.tcp_open(redis_port), 60)
    if search_crashed and not fresh:
        say("rebuilding the search index from Argilla's database")
        proc.run([str(python), "-m", "argilla_server", "search-engine", "reindex"], "reindexing", env)
    creds.url = f"http://{HOST}:{port}"
    creds.save(paths.credentials)
    argilla = [str(python), "-m", "argilla_server"]
    _spawn(paths, "server", [*argilla, "start", "--host", HOST, "--port", str(port), "--no-access-log"], env)
    _spawn(paths, "worker", [*argilla, "worker", "--num-workers", "1"], env)
    _wait(paths, list(COMPONENTS), lambda: proc.answers(creds.url + "/api/v1/version"), timeout)
    paths.state.write_text(json.dumps({"url": creds.url, "port": port, "elasticsearch_port": es_port,
                                       "redis_port": redis_port}))
    return creds


def stop(data_dir: Path) -> list[str]:
    """Stop the server in `data_dir`; returns the parts that were running."""
    paths = Paths(data_dir)
    if not paths.run.exists():
        return []
    with proc.locked(paths.run / "serve.lock"):
        return stop_processes(paths)


def local_credentials(data_dir: Path) -> Credentials:
    creds = Credentials.load(Paths(data_dir).credentials)
    if creds is None:
        raise LabelerError(f"no local Argilla server set up in {data_dir} (start one with `labeler review serve`)")
    return creds


def running_state(paths: Paths) -> dict | None:
    """The state of a fully running server in `paths`, or None."""
    if not paths.state.exists() or not all(_pid_alive(paths, name) for name in COMPONENTS):
        return None
    state = json.loads(paths.state.read_text())
    return state if proc.answers(state["url"] + "/api/v1/version") else None


def stop_processes(paths: Paths) -> list[str]:
    """Server and worker first (together), then the search/redis store they write to."""
    stopped = []
    for names in (("server", "worker"), ("search",)):
        pids = {name: _pid_alive(paths, name) for name in names}
        proc.terminate([pid for pid in pids.values() if pid])
        stopped += [name for name, pid in pids.items() if pid]
        for name in names:
            paths.pid_file(name).unlink(missing_ok=True)
    paths.state.unlink(missing_ok=True)
    return [name for name in COMPONENTS if name in stopped]


def ensure_venv(say: Callable[[str], None]) -> Path:
    """The server's own venv (created and installed once; a half-done install is completed)."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".labeler-requirements"
    wanted = "\n".join(SERVER_REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with proc.locked(venv.parent / "argilla-server-venv.lock"):
        if marker.exists() and marker.read_text() == wanted and python.exists():
            return python
        say(f"installing argilla-server into {venv} (once)")
        if not python.exists():
            proc.run([sys.executable, "-m", "venv", str(venv)], "creating the argilla-server venv")
        proc.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *SERVER_REQUIREMENTS],
             "installing argilla-server")
        marker.write_text(wanted)
    return python


# One interpreter for both steps: importing argilla_server costs seconds. Secrets come in through the
# environment, not argv, so `ps` never shows them.
SETUP_OWNER = """
import os
from argilla_server.cli import app
app(["database", "migrate"], standalone_mode=False)
app(["database", "users", "create", "--first-name", "Owner", "--username", os.environ["SETUP_USERNAME"],
     "--password", os.environ["SETUP_PASSWORD"], "--role", "owner", "--api-key", os.environ["SETUP_API_KEY"],
     "--workspace", os.environ["SETUP_WORKSPACE"]], standalone_mode=False)
"""


def _create_owner(python: Path, env: dict, port: int) -> Credentials:
    creds = Credentials(url=f"http://{HOST}:{port}", username=OWNER, password=secrets.token_urlsafe(12),
                        api_key="labeler." + secrets.token_urlsafe(32), workspace=WORKSPACE)
    secrets_env = {"SETUP_USERNAME": OWNER, "SETUP_PASSWORD": creds.password, "SETUP_API_KEY": creds.api_key,
                   "SETUP_WORKSPACE": WORKSPACE}
    proc.run([str(python), "-c", SETUP_OWNER], "creating the Argilla database and owner user", env | secrets_env)
    return creds


def _server_env(paths: Paths, es_port: int, redis_port: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGILLA_")}
    return env | {
        "ARGILLA_HOME_PATH": str(paths.home),
        "ARGILLA_ELASTICSEARCH": f"http://{HOST}:{es_port}",
        "ARGILLA_SEARCH_ENGINE": "elasticsearch",
        "ARGILLA_REDIS_URL": f"redis://{HOST}:{redis_port}/0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_OFFLINE": "1",
    }


def _noida_binary(python: Path) -> Path:
    """The noida-db binary itself: its Python launcher would not pass on a SIGTERM, so we run the binary."""
    found = sorted(python.parent.parent.glob("lib/python*/site-packages/noida_db/noida-db"))
    if not found:
        raise LabelerError(f"noida-db is missing from {python.parent.parent}: delete that folder and rerun")
    found[0].chmod(0o755)
    return found[0]


def _spawn(paths: Paths, name: str, argv: list[str], env: dict) -> None:
    with open(paths.logs / f"{name}.log", "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 cwd=paths.root, start_new_session=True)
    paths.pid_file(name).write_text(str(child.pid))


def _wait(paths: Paths, names: list[str], ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name in names:
            if not _pid_alive(paths, name):
                raise LabelerError(f"the Argilla {name} process exited while starting: "
                                   f"{proc.last_line(paths.logs / f'{name}.log')} (log: {paths.logs / name}.log)")
        if time.monotonic() > deadline:
            raise LabelerError(f"the Argilla server did not answer within {timeout:.0f} s (logs in {paths.logs})")
        time.sleep(0.2)


def _pid_alive(paths: Paths, name: str) -> int | None:
    """The pid in `run/<name>.pid` if that process is alive and is ours (not a zombie, not a reused pid)."""
    try:
        pid = int(paths.pid_file(name).read_text())
    except (OSError, ValueError):
        return None
    return pid if proc.alive(pid, COMPONENTS[name]) else None
