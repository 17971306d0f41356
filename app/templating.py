"""Jinja2 templates with named blocks: an htmx request gets the block, a browser the page."""

from pathlib import Path

from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks

from app.deps import csrf_token
from app.models import User

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))
templates.env.globals["key_for"] = lambda index: LABEL_KEYS[index] if index < len(LABEL_KEYS) else ""

# Keys for the label buttons: digits first, then letters that no other shortcut uses.
LABEL_KEYS = [*"123456789", *"abcdefghijklmnopqrtvwxyz"]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") != "true"


def render(request: Request, name: str, context: dict | None = None, *, block: str | None = None,
           user: User | None = None, status_code: int = 200, headers: dict | None = None):
    """Render `name`; with `block`, only that block (for htmx swaps)."""
    ctx = {"user": user, "csrf_token": csrf_token(request), **(context or {})}
    kwargs = {"status_code": status_code, "headers": headers}
    if block:
        kwargs["block_name"] = block
    return templates.TemplateResponse(request, name, ctx, **kwargs)
