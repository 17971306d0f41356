"""What makes two pool rows the same item when the file gives them no id: their payload."""

import hashlib

import orjson


def content_hash(payload: dict) -> str:
    """32 hex digits of BLAKE2b over the payload's canonical JSON (sorted keys; NaN as null, as the
    payload is stored). Metadata is left out: the same text with another source column is the same
    thing to label. (Migration 0011 holds a copy of this function for the rows imported before it;
    change both or neither.)"""
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()
