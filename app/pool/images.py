"""Images in a pool: checked and decoded once at import, stored by their content, described by pixels.

An image's bytes are stored once per project under their SHA-256 (table item_images); the item's
payload names that digest. Two copies of a picture are then one stored image and, without ids,
one item. The model's default features are a small thumbnail's pixels, computed here at import so
no retrain decodes an image again: 16 x 16 RGB (768 numbers), enough to tell digits, documents or
scenes apart in coarse strokes. Anything sharper comes from the user's own embedding column (an
embedding of each image made offline by a model of their choice; see README, "Embeddings").
"""

import base64
import binascii
import hashlib
import io
import warnings
from dataclasses import dataclass

THUMB_SIDE = 16
# Formats a browser shows and Pillow reads; served under the type Pillow found in the bytes, never
# one the file claims (an .svg or an HTML file named .png is refused: Pillow cannot read it).
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp",
               "BMP": "image/bmp"}
# A decompression bomb (a few KB of PNG that inflates to gigapixels) is refused before it decodes.
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class PoolImage:
    digest: str  # SHA-256 of the bytes, hex
    media_type: str
    width: int
    height: int
    data: bytes
    pixels: list[int]  # THUMB_SIDE x THUMB_SIDE x RGB, row by row, 0-255


class ImageProblem(ValueError):
    """Why some bytes are not an image labelloop can show and learn from (a sentence)."""


def read_image(data: bytes) -> PoolImage:
    """Check, measure and describe one image; ImageProblem says what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageProblem("the image is empty (0 bytes)")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageProblem(f"the image is {len(data) / 2**20:.1f} MB, above the {MAX_IMAGE_BYTES // 2**20} MB "
                           "an image may have")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
                if kind not in MEDIA_TYPES:
                    raise ImageProblem(f"{kind or 'an unknown'} images cannot be shown in a browser; use PNG, "
                                       "JPEG, GIF, WebP or BMP")
                if width * height > MAX_PIXELS:
                    raise ImageProblem(f"the image is {width} x {height} pixels, above the {MAX_PIXELS:,} "
                                       "pixels an image may have")
                image.draft("RGB", (THUMB_SIDE * 4, THUMB_SIDE * 4))  # JPEG: decode at a fraction of the size
                thumb = image.convert("RGB").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
    except ImageProblem:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise ImageProblem("not an image (PNG, JPEG, GIF, WebP or BMP) that can be read") from None
        raise ImageProblem(f"the image is larger than the {MAX_PIXELS:,} pixels an image may have") from None
    except (OSError, ValueError, SyntaxError) as exc:  # a truncated or corrupt file
        raise ImageProblem(f"the image cannot be decoded ({exc})") from None
    return PoolImage(digest=hashlib.sha256(data).hexdigest(), media_type=MEDIA_TYPES[kind], width=width,
                     height=height, data=data, pixels=list(thumb.tobytes()))


def image_bytes(value) -> bytes | str:
    """The bytes a cell holds: raw bytes (Parquet), a Hugging Face image struct ({"bytes": ...}), a
    data URI or plain base64 text (CSV, JSON). A string that looks like a path or an address is
    answered with a sentence: labelloop fetches nothing, the images travel with the file."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict) and isinstance(value.get("bytes"), bytes | bytearray):
        return bytes(value["bytes"])
    if isinstance(value, dict) and "path" in value:
        value = value.get("path")
    if not isinstance(value, str) or not value.strip():
        return "the image is empty" if value in (None, "") else f"expected an image, found {type(value).__name__}"
    text = value.strip()
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return ("this is a picture's SHA-256, as a labelloop export names pictures: the picture itself is not "
                "in the file; upload the .zip of pictures (it may hold this file, naming them by path)")
    if text.startswith("data:"):
        head, _, body = text.partition(",")
        if ";base64" not in head:
            return "a data URI must be base64-encoded (data:image/png;base64,...)"
        text = body
    elif text.startswith(("http://", "https://", "/", "s3://", "gs://")) or (
            len(text) < 400 and "." in text[-6:]):
        shown = text if len(text) <= 60 else text[:57] + "..."
        return (f"{shown!r} names an image elsewhere; labelloop fetches nothing. Upload a .zip holding the "
                "images (with this file inside it, naming them), or put the images in the file as base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return "not base64 text, a data URI or image bytes"


PREVIEW_SIDE = 48


def preview_thumbnail(image: PoolImage) -> str:
    """The picture fitted in PREVIEW_SIDE pixels as a data URI, for the upload preview (nothing is
    stored yet, so there is no address to serve it from)."""
    data, media_type = reduced_copy(image.data, PREVIEW_SIDE) or (image.data, image.media_type)
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def picture_of(payload) -> dict | None:
    """What a page needs to show an item's picture (its digest and size), or None for an item that
    has none: the thumbnail's numbers stay behind."""
    if not isinstance(payload, dict) or not payload.get("image"):
        return None
    return {key: payload.get(key) for key in ("image", "width", "height")}


DIGEST_PATTERN = r"^[0-9a-f]{64}$"


# Sides of the reduced copies pages ask for (`?w=`): a list's thumbnails and the quality page's
# pictures. Made on request from the original (a JPEG decodes at a fraction of its size) and kept
# by the browser, since a digest names its bytes for ever (QA: an items page of 40-pixel thumbnails
# downloaded 44 MB of originals).
REDUCED_SIDES = (96, 320)


def reduced_copy(data: bytes, max_side: int) -> tuple[bytes, str] | None:
    """The picture fitted in max_side x max_side (PNG if it has transparency or is a PNG, else JPEG),
    or None when it already fits (the original is then as small)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if max(image.size) <= max_side:
            return None
        kind = image.format
        image.draft("RGB", (max_side * 2, max_side * 2))
        keep_alpha = image.mode in ("RGBA", "LA", "P") or kind in ("PNG", "GIF")
        copy = image.convert("RGBA" if keep_alpha else "RGB")
        copy.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if keep_alpha:
        copy.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    copy.save(out, "JPEG", quality=85)
    return out.getvalue(), "image/jpeg"


def image_response(session, project_id: int, digest: str, max_side: int | None = None):
    """The stored picture (or, with `max_side`, a reduced copy) as an HTTP response, or None when
    the project has none under `digest`.
    Served under the type Pillow read at import, never sniffed (nosniff) and never run as a page
    (a sandboxing CSP), so an item's bytes cannot become a script however they were crafted.
    Content-addressed, so a browser may keep it: the digest names these bytes for ever."""
    from fastapi import Response
    from sqlalchemy import select

    from app.models import PoolImageRow

    row = session.execute(select(PoolImageRow.media_type, PoolImageRow.data).where(
        PoolImageRow.project_id == project_id, PoolImageRow.digest == digest)).first()
    if row is None:
        return None
    content, media_type = row.data, row.media_type
    if max_side is not None:
        content, media_type = reduced_copy(row.data, max_side) or (content, media_type)
    return Response(content=content, media_type=media_type, headers={
        "Cache-Control": "private, max-age=31536000, immutable", "ETag": f'"{digest}-{max_side or 0}"',
        "Content-Security-Policy": "default-src 'none'; sandbox"})
