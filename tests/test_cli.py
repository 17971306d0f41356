"""The `labelloop` console script, run as a user would: a subprocess on its own fresh SQLite database."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, inspect, select

from tests.conftest import ROOT

CONSOLE_SCRIPT = Path(sys.executable).with_name("labelloop")


class Cli:
    def __init__(self, base: Path):
        self.base = base
        self.database_url = f"sqlite:///{base}/cli.db"
        # Nothing of the test session's own database or settings may leak into the commands.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LABELLOOP_") and k != "DATABASE_URL"}
        self.env.update(DATABASE_URL=self.database_url, LABELLOOP_DATA_DIR=str(base / "data"),
                        LABELLOOP_SECRET_KEY="cli-test-secret-key", LABELLOOP_LOG_LEVEL="WARNING")

    def run(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        # cwd is the temporary directory, so the repository's `.env` (if any) is not read
        result = subprocess.run([str(CONSOLE_SCRIPT), *args], env={**self.env, **(env or {})}, cwd=self.base,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"labelloop {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result

    def count(self, table) -> int:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(table))
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    assert CONSOLE_SCRIPT.exists(), f"the console script is not installed at {CONSOLE_SCRIPT}"
    return Cli(tmp_path_factory.mktemp("cli"))


def test_migrate_creates_the_schema_on_a_fresh_database(cli):
    assert "up to date" in cli.run("migrate").stdout
    engine = create_engine(cli.database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "users", "projects", "items", "annotations", "jobs", "api_tokens"} <= tables
    assert "up to date" in cli.run("migrate").stdout  # again: nothing to do, no error


def test_demo_prints_the_three_logins_and_is_idempotent(cli):
    from app.demo import DEMO_USERS
    from app.models import Item, PoolImageRow, Project, User

    first = cli.run("demo").stdout
    for username, password, role in DEMO_USERS:
        assert f"{username} / {password}" in first and role in first
    items, users, projects = cli.count(Item), cli.count(User), cli.count(Project)
    # the Rotten Tomatoes snippets, and scikit-learn's 1,797 digits as an image project
    assert items == 13_891 + 1_797 and "13891 items" in first and "1797 items" in first
    assert users == 3 and projects == 2
    assert cli.count(PoolImageRow) == 1_797

    second = cli.run("demo").stdout
    assert (cli.count(Item), cli.count(User), cli.count(Project)) == (items, users, projects)
    assert "13891 items" in second and "1797 items" in second
    for username, password, _ in DEMO_USERS:
        assert f"{username} / {password}" in second


def test_create_user_prints_a_token_that_authenticates_on_the_api(cli):
    from app.models import ApiToken
    from app.security import hash_random_secret

    result = cli.run("create-user", "bot", "--role", "admin", "--print-token",
                     env={"LABELLOOP_NEW_PASSWORD": "bot-password-123"})
    token = result.stdout.strip()
    assert token.startswith("ll_") and "\n" not in token, result.stdout
    engine = create_engine(cli.database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(ApiToken.token_hash, ApiToken.prefix)).all()
    finally:
        engine.dispose()
    assert (hash_random_secret(token), token[:10]) in [tuple(row) for row in stored]

    # The app, in a process of its own configured by the same environment, accepts the token.
    check = textwrap.dedent("""
        import sys
        from fastapi.testclient import TestClient
        from app.main import create_app

        with TestClient(create_app()) as client:
            good = client.get("/api/v1/projects", headers={"Authorization": "Bearer " + sys.argv[1]})
            bad = client.get("/api/v1/projects", headers={"Authorization": "Bearer ll_not-a-real-token"})
        print(good.status_code, bad.status_code, type(good.json()).__name__)
    """)
    answer = subprocess.run([sys.executable, "-c", check, token], env={**cli.env, "PYTHONPATH": str(ROOT)},
                            cwd=cli.base, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.split() == ["200", "401", "list"]


def test_serve_stopped_by_sigterm_takes_its_worker_along(tmp_path):
    # as systemd and docker stop it; uvicorn re-raises the signal once it has shut down
    import signal
    import time

    from tests.conftest import free_port, wait_for

    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/serve.db", "LABELLOOP_DATA_DIR": str(tmp_path / "d"),
           "LABELLOOP_WORKER_POLL_SECONDS": "0.2"}
    serve = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        banner = serve.stdout.readline()
        worker_pid = int(banner.rsplit("worker pid ", 1)[1].split(")")[0])
        wait_for(f"http://127.0.0.1:{port}/login")
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=20)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(worker_pid):
            time.sleep(0.2)
        assert not _alive(worker_pid), "the worker outlived the server"
    finally:
        if serve.poll() is None:
            serve.kill()
        if "worker_pid" in locals() and _alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
