"""Users and their API tokens."""

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.incoming import NUL_MESSAGE
from app.models import ApiToken, BrowserSession, Role, User, utcnow
from app.security import (
    dummy_password_hash,
    hash_password,
    hash_random_secret,
    new_api_token,
    new_session_id,
    verify_password,
)


class UserExists(ValueError):
    pass


def create_user(session: Session, *, username: str, password: str, role: str) -> User:
    """A new active user with an argon2-hashed password."""
    username = username.strip()
    if not username:
        raise ValueError("the username is empty")
    if "\x00" in username:
        raise ValueError(f"the username: {NUL_MESSAGE}")
    if role not in Role.__members__:
        raise ValueError(f"unknown role {role!r}; choose admin, lead or annotator")
    if len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    # "Ann" and "ann" would be two people to the app and one to everyone reading a member list
    same = session.scalar(select(User.username).where(func.lower(User.username) == username.lower()))
    if same is not None:
        raise UserExists(f"A user named {same!r} already exists" + ("." if same == username else
                                                                   " (names differing only in case are one name)."))
    user = User(username=username, password_hash=hash_password(password), role=role, is_active=True)
    session.add(user)
    session.flush()
    return user


def user_named(session: Session, username: str) -> User | None:
    """The user of this name: as typed, else regardless of case when that finds one user (older
    databases may hold names that differ only in case)."""
    name = username.strip()
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        alike = session.scalars(select(User).where(func.lower(User.username) == name.lower()).limit(2)).all()
        user = alike[0] if len(alike) == 1 else None
    return user


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with these credentials, or None (in constant time either way); the name as
    `user_named` finds it."""
    user = user_named(session, username)
    if user is None:
        verify_password(dummy_password_hash(), password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def issue_api_token(session: Session, *, user: User, name: str = "token") -> str:
    """Create a token for `user` and return it in clear; only its hash is kept."""
    token = new_api_token()
    session.add(ApiToken(user_id=user.id, name=name, token_hash=hash_random_secret(token), prefix=token[:10]))
    session.flush()
    return token


def live_token(session: Session, *, token: str) -> ApiToken | None:
    """The token row, if the token is known, not revoked, and its user is active."""
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_hash == hash_random_secret(token), ApiToken.revoked_at.is_(None))
    )
    if row is None or not row.user.is_active:
        return None
    return row


def touch_token(session: Session, *, token_id: int) -> None:
    row = session.get(ApiToken, token_id)
    if row is not None:
        row.last_used_at = utcnow()


def set_role(session: Session, *, user: User, role: str) -> None:
    """Promote or demote a user; their next request already acts with the new role."""
    if role not in Role.__members__:
        raise ValueError(f"unknown role {role!r}; choose admin, lead or annotator")
    user.role = role


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _session_max_age() -> timedelta:
    return timedelta(seconds=get_settings().session_max_age_seconds)  # the cookie's own lifetime


def start_browser_session(session: Session, *, user: User) -> str:
    """A new signed-in browser for `user`; returns the id its cookie carries. Sessions of this user
    older than a cookie lives (expired anyway) are cleared out on the way."""
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id,
                                                 BrowserSession.created_at < utcnow() - _session_max_age()))
    session_id = new_session_id()
    session.add(BrowserSession(id_hash=hash_random_secret(session_id), user_id=user.id))
    session.flush()
    return session_id


def browser_session_user(session: Session, *, session_id: str) -> User | None:
    """The active user signed in with this session id, if the session has not ended or expired."""
    return session.scalar(select(User).join(BrowserSession, BrowserSession.user_id == User.id).where(
        BrowserSession.id_hash == hash_random_secret(session_id),
        BrowserSession.created_at >= utcnow() - _session_max_age(),
        User.is_active.is_(True)))


def end_browser_session(session: Session, *, session_id: str) -> None:
    session.execute(delete(BrowserSession).where(BrowserSession.id_hash == hash_random_secret(session_id)))


def _end_everything_of(session: Session, user: User) -> None:
    """Sign `user` out everywhere: browser sessions end and API tokens are revoked, so a cookie or
    token copied before a password reset or deactivation does not outlive it."""
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
    revoke_tokens_of(session, user=user)


def revoke_tokens_of(session: Session, *, user: User) -> int:
    """Revoke every live API token of `user`; returns how many there were."""
    live = list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))))
    for token in live:
        token.revoked_at = utcnow()
    return len(live)


def live_token_counts(session: Session) -> dict[int, int]:
    """user id -> live API tokens, for the admin's list of users."""
    return dict(session.execute(select(ApiToken.user_id, func.count()).where(ApiToken.revoked_at.is_(None))
                                .group_by(ApiToken.user_id)).all())


def set_active(session: Session, *, user: User, active: bool) -> None:
    """Deactivate (or reactivate) a user. Deactivating ends their sessions and revokes their tokens at
    once; a reactivated user signs in again and makes new tokens."""
    if user.is_active != active:
        user.is_active = active
        if not active:
            _end_everything_of(session, user)


def reset_password(session: Session, *, user: User, password: str) -> None:
    """Set a new password, end the user's browser sessions and revoke their API tokens."""
    if len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    user.password_hash = hash_password(password)
    _end_everything_of(session, user)


def tokens_of(session: Session, *, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())))


def revoke_token(session: Session, *, token_id: int, owner_id: int | None = None) -> ApiToken | None:
    """Revoke a token (only its owner's when `owner_id` is given); revoking twice changes nothing."""
    token = session.get(ApiToken, token_id)
    if token is None or (owner_id is not None and token.user_id != owner_id):
        return None
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
