"""Shared fixtures: a migrated database (SQLite, or PostgreSQL via LABELLOOP_TEST_DATABASE_URL),
the app in-process, users with tokens, and a live server for browser and concurrency tests.

The app and worker open their own sessions, so instead of one rolled-back transaction per test
every table is emptied after each test.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    """Engine tests (tests/al) never touch the database, so the PostgreSQL pass can skip them."""
    for item in items:
        if "/tests/al/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.engine)


def pytest_report_header(config):
    url = os.environ.get("LABELLOOP_TEST_DATABASE_URL")
    return f"labelloop database: {'PostgreSQL (' + url.rsplit('@', 1)[-1] + ')' if url else 'SQLite'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("labelloop")
    url = os.environ.get("LABELLOOP_TEST_DATABASE_URL") or f"sqlite:///{base}/test.db"
    os.environ["DATABASE_URL"] = url
    os.environ["LABELLOOP_DATA_DIR"] = str(base / "data")
    os.environ["LABELLOOP_SECRET_KEY"] = "test-secret-key-not-for-production"
    # Real argon2id at a lower cost: the suite creates and signs in thousands of throwaway users, and
    # at the production cost (0.15 s a hash here) that was minutes of each pass. Servers and CLIs the
    # tests start inherit it; tests/test_security.py checks the production defaults.
    os.environ["LABELLOOP_PASSWORD_HASH_TIME_COST"] = "1"
    os.environ["LABELLOOP_PASSWORD_HASH_MEMORY_KIB"] = "1024"
    from app.config import get_settings
    from app.db import get_engine, reset_engine_cache
    from app.migrate import upgrade_to_head

    get_settings.cache_clear()
    reset_engine_cache()
    if not url.startswith("sqlite"):
        with get_engine().begin() as conn:  # a previous run's schema must not hide a broken migration
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        reset_engine_cache()
    upgrade_to_head(url)
    yield url
    reset_engine_cache()


TABLES_CHILD_FIRST = ["item_quality", "quality_reports", "label_reviews",
                      "ranking_entries", "coverage_entries", "leases", "annotations", "jobs", "simulations",
                      "project_members",
                      "login_failures", "browser_sessions", "model_versions", "items",
                      "item_images", "projects", "api_tokens", "users"]


def wipe_database() -> None:
    from sqlalchemy.exc import OperationalError

    from app.db import get_engine
    from app.quality.explain import forget as forget_explanations
    from app.training.features import forget

    engine = get_engine()
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":
                    conn.execute(text(f"TRUNCATE {', '.join(TABLES_CHILD_FIRST)} RESTART IDENTITY CASCADE"))
                else:
                    conn.execute(text("UPDATE projects SET current_model_version_id = NULL"))
                    for table in TABLES_CHILD_FIRST:
                        conn.execute(text(f"DELETE FROM {table}"))
            break
        except OperationalError as exc:
            # A browser test's page, closed as the test ends, sends its card back (a beacon) to the
            # live server; PostgreSQL may find that write and the TRUNCATE deadlocked and abort
            # either. The beacon's loss is harmless (the page is gone); the wipe tries again.
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2)
    forget()
    forget_explanations()


def settle_live_worker(timeout: float = 60.0) -> None:
    """Drop queued jobs and wait for the running one to end: a live worker writing a coverage
    order or a model for a project the wipe has just deleted fails on a foreign key."""
    from sqlalchemy import select, update

    from app.db import session_scope
    from app.models import Job, JobStatus

    with session_scope() as session:
        session.execute(update(Job).where(Job.status == JobStatus.queued)
                        .values(status=JobStatus.failed, error="the test ended"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(write=False) as session:
            if session.scalar(select(Job.id).where(Job.status == JobStatus.running).limit(1)) is None:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the live worker still ran a job {timeout:.0f}s after the test ended")


@pytest.fixture(autouse=True)
def _clean_database(database_url, request):
    yield
    if "live_server" in request.fixturenames:
        settle_live_worker()
    wipe_database()


@pytest.fixture
def app(database_url):
    from app.main import create_app

    return create_app()


@pytest.fixture
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver") as c:
        yield c


class Users:
    """Creates users and hands out API clients and their tokens."""

    def __init__(self, app):
        self.app = app

    def create(self, username: str, role: str, password: str = "password-123") -> tuple[int, str]:
        from app.db import session_scope
        from app.users.service import create_user, issue_api_token

        with session_scope() as session:
            user = create_user(session, username=username, password=password, role=role)
            return user.id, issue_api_token(session, user=user)

    def join(self, project_id: int, *usernames: str) -> None:
        """Make these users members of the project (admins need no membership)."""
        from sqlalchemy import select

        from app.db import session_scope
        from app.models import User
        from app.projects.membership import add_member

        with session_scope() as session:
            for name in usernames:
                add_member(session, project_id=project_id,
                           user=session.scalar(select(User).where(User.username == name)))

    def api(self, token: str):
        from fastapi.testclient import TestClient

        return TestClient(self.app, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def users(app) -> Users:
    return Users(app)


def run_worker_until_idle() -> int:
    from app.worker.runner import run_worker

    return run_worker(once=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class LiveServer:
    def __init__(self, url: str, procs: list[subprocess.Popen], env: dict):
        self.url, self.procs, self.env = url, procs, env

    def start_worker(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=self.env, cwd=ROOT)
        self.procs.append(proc)
        return proc


@pytest.fixture(scope="module")
def live_server(database_url, tmp_path_factory):
    """uvicorn on a free loopback port and one worker process, sharing the test database."""
    port = free_port()
    env = {**os.environ, "LABELLOOP_WORKER_POLL_SECONDS": "0.2", "LABELLOOP_LOG_LEVEL": "WARNING"}
    web = subprocess.Popen([sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
                            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                           env=env, cwd=ROOT)
    server = LiveServer(f"http://127.0.0.1:{port}", [web], env)
    server.start_worker()
    try:
        wait_for(server.url + "/login")
        yield server
    finally:
        for proc in server.procs:
            proc.terminate()
        for proc in server.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
