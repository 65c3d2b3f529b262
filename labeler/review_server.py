"""A local Argilla server for `labeler review`: its own venv, noida-db for Elasticsearch and Redis, loopback only.

argilla-server 2.8.0 needs click<8.2 and datasets<5, which clash with labeler's stack, so it gets a virtual
environment of its own under the cache dir. Everything else lives in the data dir (default <cache>/argilla):
`home/` (Argilla's SQLite database), `search/` (noida-db's data), `logs/`, `run/` (pid files, ports) and
`credentials.json` (mode 0600). Each process runs in its own session, so `stop` ends it with its children.
"""

import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from labeler.errors import LabelerError

HOST = "127.0.0.1"
SERVER_REQUIREMENTS = ("argilla-server==2.8.0", "click<8.2", "datasets<5", "noida-db==0.2.3")
OWNER = "owner"
WORKSPACE = "reviewers"
# Start order (stop runs it backwards) and a word that must be in each process's command line, so a pid
# file left behind never makes us signal an unrelated process that reused the pid.
COMPONENTS = {"search": "noida-db", "server": "argilla_server", "worker": "argilla_server"}


def cache_dir() -> Path:
    """`$LABELER_CACHE_DIR`, else `$XDG_CACHE_HOME/labeler`, else `~/.cache/labeler`."""
    if os.environ.get("LABELER_CACHE_DIR"):
        return Path(os.environ["LABELER_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "labeler"


def default_data_dir() -> Path:
    return cache_dir() / "argilla"


def venv_dir() -> Path:
    return cache_dir() / "argilla-server-venv"


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
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)

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


def serve(port: int, data_dir: Path, timeout: float = 180.0, say: Callable[[str], None] = lambda m: None) -> ServeResult:
    """Start (or reuse) the server; returns once `/api/v1/version` answers."""
    started = time.perf_counter()
    paths = Paths(data_dir)
    paths.create()
    with _locked(paths.run / "serve.lock"):
        state = running_state(paths)
        if state:
            creds = Credentials.load(paths.credentials)
            if creds:
                return ServeResult(state["url"], creds, paths.credentials, True, time.perf_counter() - started)
        if stop_processes(paths):
            say("restarting: a part of the previous server had stopped")
        if not _port_free(port):
            raise LabelerError(f"{HOST}:{port} is in use by another program; choose another --port")
        python = ensure_venv(say)
        es_port, redis_port = _free_ports(2)
        env = _server_env(paths, es_port, redis_port)
        _spawn(paths, "search", [str(_noida_binary(python)), "start", "--only", "elasticsearch,redis",
                                 "--elasticsearch-port", str(es_port), "--redis-port", str(redis_port),
                                 "--data-dir", str(paths.search), "--host", HOST], env)
        _wait(paths, ["search"], lambda: _answers(f"http://{HOST}:{es_port}/") and _tcp_open(redis_port), 60)
        creds = Credentials.load(paths.credentials)
        if creds is None:
            say("first start: creating the database and the owner user")
            creds = _create_owner(paths, python, env, port)
        creds.url = f"http://{HOST}:{port}"
        creds.save(paths.credentials)
        argilla = [str(python), "-m", "argilla_server"]
        _spawn(paths, "server", [*argilla, "start", "--host", HOST, "--port", str(port), "--no-access-log"], env)
        _spawn(paths, "worker", [*argilla, "worker", "--num-workers", "1"], env)
        _wait(paths, list(COMPONENTS), lambda: _answers(creds.url + "/api/v1/version"), timeout)
        paths.state.write_text(json.dumps({"url": creds.url, "port": port, "elasticsearch_port": es_port,
                                           "redis_port": redis_port}))
    return ServeResult(creds.url, creds, paths.credentials, False, time.perf_counter() - started)


def stop(data_dir: Path) -> list[str]:
    """Stop the server in `data_dir`; returns the parts that were running."""
    paths = Paths(data_dir)
    if not paths.run.exists():
        return []
    with _locked(paths.run / "serve.lock"):
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
    return state if _answers(state["url"] + "/api/v1/version") else None


def stop_processes(paths: Paths) -> list[str]:
    stopped = []
    for name in reversed(COMPONENTS):
        pid = _pid_alive(paths, name)
        if pid:
            _terminate(pid)
            stopped.append(name)
        paths.pid_file(name).unlink(missing_ok=True)
    paths.state.unlink(missing_ok=True)
    return stopped[::-1]


def ensure_venv(say: Callable[[str], None]) -> Path:
    """The server's own venv (created and installed once; a half-done install is completed)."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    marker = venv / ".labeler-requirements"
    wanted = "\n".join(SERVER_REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.parent / "argilla-server-venv.lock"):
        if marker.exists() and marker.read_text() == wanted and python.exists():
            return python
        say(f"installing argilla-server into {venv} (once)")
        if not python.exists():
            _run([sys.executable, "-m", "venv", str(venv)], "creating the argilla-server venv")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *SERVER_REQUIREMENTS],
             "installing argilla-server")
        marker.write_text(wanted)
    return python


def _create_owner(paths: Paths, python: Path, env: dict, port: int) -> Credentials:
    argilla = [str(python), "-m", "argilla_server", "database"]
    _run([*argilla, "migrate"], "migrating the Argilla database", env)
    creds = Credentials(url=f"http://{HOST}:{port}", username=OWNER, password=secrets.token_urlsafe(12),
                        api_key="labeler." + secrets.token_urlsafe(32), workspace=WORKSPACE)
    _run([*argilla, "users", "create", "--first-name", "Owner", "--username", OWNER, "--password", creds.password,
          "--role", "owner", "--api-key", creds.api_key, "--workspace", WORKSPACE], "creating the owner user", env)
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
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=paths.root, start_new_session=True)
    paths.pid_file(name).write_text(str(proc.pid))


def _wait(paths: Paths, names: list[str], ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for name in names:
            if not _pid_alive(paths, name):
                stop_processes(paths)
                raise LabelerError(f"the Argilla {name} process exited while starting: "
                                   f"{_last_line(paths.logs / f'{name}.log')} (log: {paths.logs / name}.log)")
        if time.monotonic() > deadline:
            stop_processes(paths)
            raise LabelerError(f"the Argilla server did not answer within {timeout:.0f} s (logs in {paths.logs})")
        time.sleep(0.2)


def _pid_alive(paths: Paths, name: str) -> int | None:
    """The pid in `run/<name>.pid` if that process is alive and is ours (not a zombie, not a reused pid)."""
    try:
        pid = int(paths.pid_file(name).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return pid if COMPONENTS[name] in cmdline and state != "Z" else None


def _terminate(pid: int, grace: float = 20.0) -> None:
    """SIGTERM the process group (noida-db saves its data on SIGTERM), SIGKILL it after `grace` seconds."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Collect our own exited child (when `serve` and `stop` run in one process, e.g. in tests)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _run(argv: list[str], what: str, env: dict | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise LabelerError(f"{what} failed: {lines[-1].strip() if lines else f'exit code {done.returncode}'}")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.exists() else []
    return lines[-1].strip()[:300] if lines else "no output"
