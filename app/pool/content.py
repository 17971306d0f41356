"""What makes two pool rows the same item when the file gives them no id: their payload."""

import hashlib

import orjson


def content_hash(payload: dict) -> int:
    """A signed 64-bit BLAKE2b of the payload's canonical JSON (sorted keys; NaN as null, as the payload
    is stored). Metadata is left out: the same text with another source column is the same thing to
    label. 64 bits: two pools of a million rows share a hash by chance with odds of about 1 in 20
    million, and an integer column costs the import little. (Migration 0011 holds a copy of this
    function for the rows imported before it; change both or neither.) An item's own embedding is
    left out too: it describes the content, it is not what an annotator sees; the rows imported
    before embeddings existed have none, so their hashes are unchanged."""
    if "embedding" in payload:
        payload = {key: value for key, value in payload.items() if key != "embedding"}
    data = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)
