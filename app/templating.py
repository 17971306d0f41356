"""Jinja2 templates with named blocks: an htmx request gets the block, a browser the page."""

from pathlib import Path

from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup

from app.config import get_settings
from app.deps import csrf_token
from app.models import User

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Blocks(directory=str(TEMPLATES_DIR))
templates.env.globals["key_for"] = lambda index: LABEL_KEYS[index] if index < len(LABEL_KEYS) else ""


def duration(seconds: float) -> str:
    """An age in the unit a person would say it in: "40 s", "12 min", "3 h", "2 days"."""
    seconds = max(0.0, float(seconds))
    for unit, size, next_size in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 86400)):
        if seconds < next_size:
            return f"{int(seconds // size)} {unit}"
    days = int(seconds // 86400)
    return f"{days} day" if days == 1 else f"{days} days"


templates.env.filters["duration"] = duration
# a feature stored as 4.0 was 4 in the file: shown as such on the card
templates.env.filters["number"] = lambda v: (str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 1e15
                                             else v)


TINY_PICTURE = 160  # pixels: a picture this small is enlarged with its pixels kept sharp


def picture(project_id: int, payload: dict | None, alt: str, css_class: str = "item-image") -> Markup:
    """An image project's picture (an item's payload, or app.pool.images.picture_of it), served by
    digest to the project's members (app/pool/images.py); the card's picture loads at once, the lists'
    thumbnails when scrolled to. A tiny one (a digit, an icon) is drawn larger with square pixels."""
    digest = (payload or {}).get("image")
    if not digest:
        return Markup("")
    size = (payload.get("width"), payload.get("height"))
    tiny = all(isinstance(side, int) for side in size) and max(size) < TINY_PICTURE
    lazy = "" if css_class == "item-image" else ' loading="lazy"'
    # lists get a reduced copy (app.pool.images.REDUCED_SIDES): the card alone needs the original
    reduced = {"thumb": "?w=96", "medium": "?w=320"}.get(css_class, "")
    return Markup('<img class="{}{}" src="/projects/{}/images/{}{}" alt="{}"{}>').format(
        css_class, " tiny" if tiny else "", int(project_id), digest, reduced, alt, Markup(lazy))


templates.env.globals["picture"] = picture
# the upload form refuses a file over the limit before sending it (the server refuses it too)
templates.env.globals["max_upload_bytes"] = lambda: get_settings().max_upload_bytes

# Keys for the label buttons: digits in keyboard order (0 after 9, so the digits 1-9, 0 of the demo
# are their own keys), then letters that no other shortcut uses.
LABEL_KEYS = [*"1234567890", *"abcdefghijklmnopqrtvwxyz"]


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
