"""`labelloop serve` starts its worker again when it dies (QA: killed, it stayed dead)."""

import signal
import sys
import time

from app.worker import keeper
from app.worker.keeper import KeptWorker


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_worker_is_started_again_and_stop_ends_it(monkeypatch):
    monkeypatch.setattr(keeper, "CHECK_SECONDS", 0.05)
    monkeypatch.setattr(keeper, "FIRST_PAUSE_SECONDS", 0.05)
    kept = KeptWorker([sys.executable, "-c", "import time; time.sleep(60)"]).start()
    try:
        first = kept.process
        first.kill()
        assert _wait_for(lambda: kept.restarts == 1 and kept.process is not first)
        second = kept.process
        assert second.poll() is None
    finally:
        kept.stop(signal.SIGTERM, timeout=5)
    assert second.poll() is not None  # stopped, and not started again
    time.sleep(0.3)
    assert kept.process is second and kept.restarts == 1


def test_a_worker_that_keeps_dying_at_once_is_restarted_less_and_less_often(monkeypatch):
    monkeypatch.setattr(keeper, "CHECK_SECONDS", 0.02)
    monkeypatch.setattr(keeper, "FIRST_PAUSE_SECONDS", 0.1)
    kept = KeptWorker([sys.executable, "-c", "raise SystemExit(3)"]).start()
    try:
        time.sleep(2.5)  # pauses 0.2, 0.4, 0.8, 1.6 s (plus the starts): 3 or 4 restarts, not dozens
        assert 2 <= kept.restarts <= 5
    finally:
        kept.stop(signal.SIGTERM, timeout=5)
