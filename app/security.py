"""Passwords, API tokens and CSRF tokens."""

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.config import get_settings

TOKEN_PREFIX = "ll_"


@lru_cache(maxsize=4)
def _hasher_costing(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)


def _hasher() -> PasswordHasher:
    settings = get_settings()
    return _hasher_costing(settings.password_hash_time_cost, settings.password_hash_memory_kib)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    return _hasher_costing(time_cost, memory_kib).hash(secrets.token_urlsafe(16))


def dummy_password_hash() -> str:
    """A real hash, at the configured cost, to verify against when the user does not exist, so a
    login attempt takes the same time whether or not the name is known."""
    settings = get_settings()
    return _dummy_hash(settings.password_hash_time_cost, settings.password_hash_memory_kib)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_random_secret(token: str) -> str:
    """What is stored of an API token or a browser session id."""
    # Both carry 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)
