"""Domain errors that routes turn into clear 4xx answers."""


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidInput(DomainError):
    status_code = 422


def validation_sentence(error: dict) -> str:
    """One of pydantic's validation errors (a request body, a query, a form) as a sentence: where,
    then what, without pydantic's "Value error, " prefix."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query", "form"))
    if error.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    if error.get("type") == "missing":
        return f"{where or 'A value'}: this is required."
    message = str(error.get("msg", "")).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if where:  # "labels: labels repeat: a." (the field's name as it is spelt)
        return _ended(f"{where}: {message[:1].lower() + message[1:]}")
    return as_sentence(message)


def as_sentence(text: str) -> str:
    """A service's lower-case reason ("the password needs ...") as a sentence: capital, full stop."""
    return _ended(text[:1].upper() + text[1:])


def _ended(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def quoted(text: str) -> str:
    """A user's own words (a label, a name) inside a sentence, as typed: Python's repr would escape
    an apostrophe with a backslash and pick its quotes by the content."""
    return f"“{text}”"
