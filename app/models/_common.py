"""Column helpers shared by the tables."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no zone, so every timestamp is naive UTC on every backend."""
    return datetime.now(UTC).replace(tzinfo=None)
