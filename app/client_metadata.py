"""The submit form's `metadata` field: the client's own JSON object, stored and echoed."""

import json
from typing import Annotated, Any

from fastapi import Form
from fastapi.exceptions import RequestValidationError

MAX_METADATA_BYTES = 4096
METADATA_DOC = (
    'A JSON object of your own (e.g. `{"chat_id": 1, "message_id": 2}`), at most 4 KB; '
    "echoed as `metadata` in the result, the history log and webhooks."
)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_metadata(raw: str | None) -> dict[str, Any] | None:
    """The object, or None when absent or blank; ValueError saying what is wrong."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"metadata must be a JSON object; this is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"metadata must be a JSON object, not a {type(value).__name__}")
    serialized = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(serialized.encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata must be at most {MAX_METADATA_BYTES} bytes serialized")
    if "\\u0000" in serialized:  # Postgres JSONB cannot store NUL
        raise ValueError("metadata must not contain NUL characters")
    return value


def metadata_form(
    metadata: Annotated[
        str | None, Form(description=METADATA_DOC, examples=['{"chat_id": 1}'])
    ] = None,
) -> dict[str, Any] | None:
    """A bad `metadata` is a 422 like any other bad form field."""
    try:
        return parse_metadata(metadata)
    except ValueError as exc:
        error = {"type": "value_error", "loc": ("body", "metadata"), "msg": str(exc)}
        raise RequestValidationError([error]) from None
