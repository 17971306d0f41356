"""The base of every request body and form model: text that a database can store.

PostgreSQL's text types cannot hold the NUL character (byte 0x00), and a name, label or username
with one failed there with a 500 (the API fuzz test found it with a project named "\\u0000"),
where SQLite stored it. Refused here, on both databases alike, with a sentence naming the field.
"""

from typing import Any

from pydantic import BaseModel, field_validator

NUL_MESSAGE = "text cannot hold the NUL character (byte 0x00)"


def holds_nul(value: Any) -> bool:
    """Whether a string anywhere in `value` (nested lists and dicts included) holds a NUL."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if "\x00" in current:
                return True
        elif isinstance(current, dict):
            stack.extend(current.keys())
            stack.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            stack.extend(current)
    return False


class Incoming(BaseModel):
    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value
