"""The worker process `labelloop serve` runs beside its web server, started again when it dies.

Killed (the kernel's OOM killer on a big pool, a stray kill) the worker used to stay dead while the
web server went on: labels came in and no model was trained again (QA). Its running job is picked up
again by the next worker once its heartbeat is stale (app/worker/runner.py).
"""

import logging
import subprocess
import threading
import time

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
# A worker that dies soon after it started (the database unreachable, a broken setting) would be
# restarted in a loop: the pause before the next start doubles up to MAX_PAUSE_SECONDS.
FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 60.0
SHORT_LIFE_SECONDS = 30.0


class KeptWorker:
    def __init__(self, command: list[str], env: dict | None = None):
        self.command, self.env = command, env
        self.process: subprocess.Popen | None = None
        self._started = 0.0  # (monotonic) when the current process was started
        self.restarts = 0
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="worker-keeper", daemon=True)

    def start(self) -> "KeptWorker":
        self._spawn()
        self._watcher.start()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _spawn(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env)
        self._started = time.monotonic()

    def _watch(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while not self._stopping.wait(CHECK_SECONDS):
            code = self.process.poll()
            if code is None:
                continue
            lived = time.monotonic() - self._started
            pause = FIRST_PAUSE_SECONDS if lived > SHORT_LIFE_SECONDS else min(pause * 2, MAX_PAUSE_SECONDS)
            log.warning("the worker (pid %s) exited with code %s after %.0f s; starting another in %.0f s",
                        self.process.pid, code, lived, pause)
            if self._stopping.wait(pause):
                return
            self._spawn()
            self.restarts += 1
            log.warning("worker started again (pid %s)", self.process.pid)

    def stop(self, signal_number: int, timeout: float = 20.0) -> None:
        """Stop watching, then ask the worker to finish (it ends its job's transaction) and wait."""
        self._stopping.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=CHECK_SECONDS + 1)
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal_number)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
