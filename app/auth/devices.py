"""Browsers a user has signed in from before (OWASP's "device cookies").

Failed logins are counted per address (app/auth/throttle.py). Behind a proxy or an office's NAT,
every user has the same address, so guesses at a name from anywhere there locked its real user out,
and 30 failures locked everyone out. A browser that once signed in as a user carries a signed cookie
saying so; its logins as that user are counted by its own failures only, so others' guesses cannot
lock it out, and a guesser without the cookie is held back by address as before.
"""

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.config import get_settings

COOKIE = "labelloop_device"
MAX_AGE_SECONDS = 180 * 24 * 3600
COOKIE_PATH = "/login"  # sent to the login form only


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().resolved_secret_key(), salt="labelloop-known-device")


def known_device(cookie: str | None, username: str) -> str | None:
    """The id of the browser this cookie names, when it signed in as `username` (any case) within
    MAX_AGE_SECONDS; else None."""
    if not cookie:
        return None
    try:
        data = _serializer().loads(cookie, max_age=MAX_AGE_SECONDS)
    except BadSignature:  # (SignatureExpired is one)
        return None
    if not isinstance(data, dict) or data.get("user") != username.strip().casefold():
        return None
    device = data.get("device")
    return device if isinstance(device, str) and device else None


def device_cookie(username: str, device: str | None) -> str:
    """The cookie for a browser that just signed in as `username` (its id kept, or a new one)."""
    return _serializer().dumps({"user": username.strip().casefold(), "device": device or secrets.token_urlsafe(12)})
