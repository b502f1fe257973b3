"""Starting and stopping a server for a benchmark: a free loopback port, a process that is healthy
before the load starts, and a stop that kills what does not finish in time."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def accord_serve(project: Path, port: int, *extra: str) -> list[str]:
    """The command line of ``accord serve`` for ``project`` on loopback."""
    return [sys.executable, "-m", "accord.cli", "-c", str(project), "serve", "--host", LOOPBACK,
            "--port", str(port), *extra]


def start(cmd: list[str], port: int, env: dict[str, str], timeout: float = 60) -> subprocess.Popen[bytes]:
    """Run ``cmd`` and wait until it answers GET /health with 200 on ``port``."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = http.client.HTTPConnection(LOOPBACK, port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not become healthy within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop the server; one still busy after ``timeout`` seconds is killed."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
