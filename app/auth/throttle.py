"""Slowing down password guessing: failed logins are counted per name and per address, in the
database so every web process sees the same counts."""

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.models import LoginFailure, utcnow

WINDOW = timedelta(minutes=15)
MAX_PER_NAME_AND_ADDRESS = 5
MAX_PER_ADDRESS = 30


def seconds_until_allowed(session: Session, *, username: str, address: str, now: datetime | None = None) -> int:
    """0 when a login attempt may go ahead, else how long to wait."""
    now = now or utcnow()
    since = now - WINDOW
    checks = [
        (select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.username == username, LoginFailure.address == address, LoginFailure.at > since),
         MAX_PER_NAME_AND_ADDRESS),
        (select(func.count(), func.min(LoginFailure.at)).where(LoginFailure.address == address,
                                                               LoginFailure.at > since), MAX_PER_ADDRESS),
    ]
    wait = 0
    for stmt, limit in checks:
        count, oldest = session.execute(stmt).one()
        if count >= limit and oldest is not None:
            wait = max(wait, int((oldest + WINDOW - now).total_seconds()) + 1)
    return wait


def record_failure(session: Session, *, username: str, address: str) -> None:
    session.add(LoginFailure(username=username[:200], address=address[:64], at=utcnow()))
    # Old rows are useless past the window; trimming here keeps the table small without a cron.
    session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - 2 * WINDOW))


def forget_failures(session: Session, *, username: str, address: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.username == username, LoginFailure.address == address))
