"""The API served the production way: gunicorn, ``DJANGO_DEBUG=0``, sync workers, persistent connections.

The command line is the README's production one (``gunicorn
contacts_project.wsgi -w 2``) on a free local port. The environment is a
production one: debug off, a secret key (the bench process's, so the
pagination cursors it prepares verify), allowed hosts, and database
connections kept for ten minutes (``DB_CONN_MAX_AGE``) with their health
check. Requests say ``X-Forwarded-Proto: https`` as the TLS proxy in front
would; everything else (statement timeout, middleware) is the default.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

from bench import procfs

READY_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_environment(*, database_url: str, conn_max_age: int = 600) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "contacts_project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "CONTACTS_HMAC_KEY": settings.CONTACTS_HMAC_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "DB_CONN_MAX_AGE": str(conn_max_age),
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    env.pop("TEST_DATABASE_NAME", None)
    return env


class Gunicorn:
    """``with Gunicorn(...) as server:`` starts it, waits for ``/livez``, and stops it on exit."""

    def __init__(self, *, workers: int, env: dict[str, str], log_path: Path):
        self.workers = workers
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "contacts_project.wsgi",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            # Longer than the 15 s statement timeout: a slow query answers 503, it does not kill the worker.
            "--timeout",
            "60",
        ]

    def __enter__(self) -> "Gunicorn":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/livez", timeout=2) as response:
                    if response.status == 200 and len(self.worker_pids()) == self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /livez within {READY_TIMEOUT_SECONDS}s; see {self.log_path}")

    def worker_pids(self) -> list[int]:
        return procfs.children(self.process.pid)

    def worker_memory(self) -> list[procfs.Memory]:
        return [memory for pid in self.worker_pids() if (memory := procfs.memory(pid)) is not None]

    def __exit__(self, *exc_info):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # graceful: workers finish their request
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return False
