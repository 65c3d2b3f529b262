"""Process, port and lock helpers for the local Argilla server (`review.server`). Loopback only."""

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import psutil
from filelock import FileLock

from labeler.errors import LabelerError

HOST = "127.0.0.1"


def terminate(pids: list[int], grace: float = 20.0) -> None:
    """SIGTERM each process with every process of its session (each was started as a session leader, so this is
    what `killpg` reached; noida-db saves its data on SIGTERM), then SIGKILL what is left after `grace` s.
    Exited children of ours are reaped on the way (`serve` and `stop` may run in one process)."""
    procs = [p for p in psutil.process_iter() if _session(p) in pids]
    for p in procs:
        _signal(p, signal.SIGTERM)
    _, left = psutil.wait_procs(procs, timeout=grace)
    for p in left:
        _signal(p, signal.SIGKILL)
    psutil.wait_procs(left, timeout=5)


def _session(p: psutil.Process) -> int | None:
    try:
        return os.getsid(p.pid)
    except OSError:
        return None


def _signal(p: psutil.Process, sig: int) -> None:
    try:
        p.send_signal(sig)
    except psutil.NoSuchProcess:
        pass


def alive(pid: int, marker: str) -> bool:
    """Whether `pid` runs and is ours: not a zombie, and `marker` is in its command line (a pid file left
    behind never makes us signal an unrelated process that reused the pid)."""
    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and marker in " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def run(argv: list[str], what: str, env: dict | None = None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise LabelerError(f"{what} failed: {lines[-1].strip() if lines else f'exit code {done.returncode}'}")


def locked(path: Path) -> FileLock:
    """An exclusive lock on `path`, held inside `with` (one `serve`/`stop`/venv install at a time)."""
    return FileLock(path)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200  # loopback: never via a proxy
    except httpx.HTTPError:
        return False


def tcp_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.exists() else []
    return lines[-1].strip()[:300] if lines else "no output"
