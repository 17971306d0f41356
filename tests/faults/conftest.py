"""Processes for the fault tests: a web server and workers that a test may kill and restart.

The module-scoped `live_server` of tests/conftest.py is shared by a whole module and never
restarted; these tests kill processes with SIGKILL, so each test gets its own and every process
started here is stopped (and its log kept) when the test ends, before the database is wiped.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_for


class Stack:
    """uvicorn and `labelloop worker` subprocesses on the test database."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # database_url has put DATABASE_URL, LABELLOOP_DATA_DIR and LABELLOOP_SECRET_KEY in os.environ:
        # a restarted server verifies the cookies its predecessor signed.
        assert os.environ.get("LABELLOOP_SECRET_KEY"), "tests must pin the secret key"
        self.env = {**os.environ, "LABELLOOP_WORKER_POLL_SECONDS": "0.2", "LABELLOOP_LOG_LEVEL": "INFO"}
        self.procs: list[subprocess.Popen] = []
        self._n = 0

    def _spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        self._n += 1
        with open(self.logs / f"{self._n:02d}-{name}.log", "wb") as log:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_web(self, timeout: float = 30.0) -> subprocess.Popen:
        proc = self._spawn("web", [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
                                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                           self.env)
        wait_for(self.url + "/login", timeout=timeout)
        assert proc.poll() is None, "the web server exited; is the port taken?"
        return proc

    def start_worker(self, **extra_env: str) -> subprocess.Popen:
        return self._spawn("worker", [sys.executable, "-m", "app.cli", "worker"], {**self.env, **extra_env})

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        """SIGTERM: the worker finishes its current job and exits."""
        proc.terminate()
        proc.wait(timeout=30)

    @staticmethod
    def kill(proc: subprocess.Popen) -> None:
        """SIGKILL: no shutdown handler, no finally block, no rollback by the process itself."""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        end_orphaned_queries()

    def log_tail(self, chars: int = 3000) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            out.append(f"--- {path.name}\n{text[-chars:]}")
        return "\n".join(out)


def end_orphaned_queries() -> None:
    """PostgreSQL runs a query to its end even when the process that sent it was killed; one still
    running after every process is gone would hold its locks and block the wipe after the test."""
    from sqlalchemy import text

    from app.db import get_engine

    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                          " AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'"))


@pytest.fixture
def stack(database_url, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    s = Stack(logs)
    try:
        yield s
    finally:
        s.stop_all()
        print(f"\nprocess logs in {logs}")
