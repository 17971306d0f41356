"""How far a running import has got, for the browser to poll while the upload request is still open.

A 1M-row file takes the better part of a minute on the server after its bytes have arrived. The
request that imports it cannot report on itself until it ends, so it writes its progress to a
small JSON file under the data directory, and a second request (any web process on the machine:
they share the data directory, as they share the feature cache) reads it. A file, not a table:
on SQLite the import holds the database's only write lock until it commits, so a progress row
could not be written meanwhile, and an uncommitted one could not be read.

The browser names the import with a random token it sends along with the file; the token is
checked against a strict pattern before it becomes part of a path.
"""

import json
import os
import re
import time
from pathlib import Path

from app.config import get_settings

TOKEN_PATTERN = re.compile(r"[0-9a-f]{16,64}")
WRITE_EVERY_SECONDS = 0.25  # the page polls twice a second; more writes would only cost the import
STALE_AFTER_SECONDS = 24 * 3600  # leftovers of a crashed process are swept when the next import starts


def valid_token(token: str | None) -> bool:
    return bool(token) and TOKEN_PATTERN.fullmatch(token) is not None


def _directory() -> Path:
    return get_settings().data_dir / "imports"


def _path(project_id: int, token: str) -> Path:
    if not valid_token(token):
        raise ValueError("invalid progress token")
    return _directory() / f"project-{int(project_id)}-{token}.json"


def read_progress(project_id: int, token: str) -> dict | None:
    """The last state written for this import, or None when there is none (yet, or any more)."""
    try:
        return json.loads(_path(project_id, token).read_text())
    except (OSError, ValueError):
        return None


class ImportProgress:
    """Written by the importing request: `update` as rows go in, `finish` with the outcome."""

    def __init__(self, project_id: int, token: str, *, total_bytes: int | None, filename: str | None):
        self.path = _path(project_id, token)
        self.total_bytes = total_bytes or None
        self.filename = filename
        self.started = time.monotonic()
        self._last_write = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _sweep(self.path.parent)
        self._write({"phase": "reading", "rows": 0, "bytes": 0})

    def update(self, rows: int, bytes_read: int | None, phase: str = "reading") -> None:
        """import_pool's `on_progress`: "reading" states at most every WRITE_EVERY_SECONDS, any other
        phase at once."""
        if phase == "reading" and time.monotonic() - self._last_write < WRITE_EVERY_SECONDS:
            return
        self._write({"phase": phase, "rows": rows, "bytes": bytes_read})

    def finish(self, *, ok: bool, rows: int) -> None:
        self._write({"phase": "done" if ok else "refused", "rows": rows, "bytes": self.total_bytes})

    def _write(self, state: dict) -> None:
        self._last_write = time.monotonic()
        state = {**state, "total_bytes": self.total_bytes, "filename": self.filename,
                 "seconds": round(self._last_write - self.started, 1)}
        if state.get("bytes") and self.total_bytes:
            state["fraction"] = min(1.0, state["bytes"] / self.total_bytes)
        temporary = self.path.with_suffix(".tmp")
        try:  # progress is a courtesy: a full disk must not fail the import itself
            temporary.write_text(json.dumps(state))
            os.replace(temporary, self.path)
        except OSError:
            pass


def _sweep(directory: Path) -> None:
    cutoff = time.time() - STALE_AFTER_SECONDS
    for path in directory.glob("project-*"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass
