"""Start a service as a child process on 127.0.0.1, wait until it is healthy, stop it (notebook 11).

The tests and the notebook use :func:`start_service` with the command of
``python -m course_utils.serve`` (uvicorn) or ``python -m course_utils.serve.ray_app`` (Ray
Serve). The child gets its own process group, so that :meth:`Service.stop` can end every process
it started (uvicorn's workers, Ray's daemons) even if it does not exit on SIGTERM in time.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx

from course_utils.paths import display_path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def uvicorn_command(model: str | Path, port: int, *, workers: int = 1, threads: int = 1,
                    concurrency: int = 1, queue: int = 16, timeout_s: float = 10.0) -> list[str]:
    """The command line that serves ``model`` with uvicorn on 127.0.0.1:``port`` (no access log)."""
    return [sys.executable, "-m", "course_utils.serve", "--model", str(model), "--port", str(port),
            "--workers", str(workers), "--threads", str(threads), "--concurrency", str(concurrency),
            "--queue", str(queue), "--timeout-s", str(timeout_s), "--no-access-log"]


@dataclass
class Service:
    """A service running as a child process; ``url`` is its address on 127.0.0.1."""

    process: subprocess.Popen
    url: str
    log: Path
    health: dict[str, Any] = field(default_factory=dict)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines the service printed."""
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def memory_mb(self) -> float:
        """Resident memory of the service's processes together (the child and all its descendants)."""
        import psutil

        root = psutil.Process(self.process.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def stop(self, timeout_s: float = 60.0) -> int:
        """Send SIGTERM and wait for a graceful exit; kill the process group if it takes too long."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever the service left behind in its process group
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return self.process.wait(timeout_s)

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_service(command: Sequence[str], port: int, log: Path, *, prefix: str = "",
                  env: dict[str, str] | None = None, timeout_s: float = 120.0) -> Service:
    """Run ``command`` (which must listen on 127.0.0.1:``port``) and wait until GET /health answers 200.

    ``prefix`` is the path the app is mounted at (Ray Serve's route prefix), empty for uvicorn.

    Output goes to ``log``. Raises RuntimeError with the end of the log if the process exits or
    is not healthy within ``timeout_s``; the process is stopped first.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    service = Service(process, f"http://{LOOPBACK}:{port}{prefix}", log)
    atexit.register(service.stop)  # also when a notebook's kernel exits before the cell that stops it
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"{service.url}/health", timeout=5.0)
                if answer.status_code == 200:
                    service.health = answer.json()
                    return service
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    except BaseException:
        service.stop()
        raise
    exited = process.poll()
    service.stop()
    state = f"exited with code {exited}" if exited is not None else f"was not healthy in {timeout_s:g} s"
    raise RuntimeError(f"The service {state}; the end of {display_path(log)}:\n{service.log_tail()}")


def ray_command(model: str | Path, port: int, *, replicas: int = 1, replica_cpus: float = 1.0,
                threads: int = 1, concurrency: int = 1, max_batch_sizes: Sequence[int] = (1,),
                batch_wait_ms: float = 5.0) -> list[str]:
    """The command line that serves ``model`` with Ray Serve on 127.0.0.1:``port``, one app per batch size."""
    return [sys.executable, "-m", "course_utils.serve.ray_app", "--model", str(model), "--port", str(port),
            "--replicas", str(replicas), "--replica-cpus", str(replica_cpus), "--threads", str(threads),
            "--concurrency", str(concurrency), "--batch-wait-ms", str(batch_wait_ms),
            "--max-batch-size", *map(str, max_batch_sizes)]
