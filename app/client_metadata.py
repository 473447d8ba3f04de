"""The submit form's `metadata` field: the client's own JSON object, stored and echoed."""

import json
import re
from typing import Annotated, Any

from fastapi import Form
from fastapi.exceptions import RequestValidationError

MAX_METADATA_BYTES = 4096
# Far below what the JSON parser (recursion), pydantic's serializer (255) and Postgres
# JSONB accept: a deeper object could be stored and then never be read back.
MAX_METADATA_DEPTH = 32
METADATA_DOC = (
    'A JSON object of your own (e.g. `{"chat_id": 1, "message_id": 2}`), at most 4 KB and '
    "32 levels deep; echoed as `metadata` in the result, the history log and webhooks."
)
# A JSON string (to its closing quote, or to the end if it has none), or a bracket: one pass,
# so brackets inside strings are skipped and no text is scanned twice.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def nests_deeper_than(raw: str, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest more than `limit` levels, found
    without parsing it (a parser recurses once per level)."""
    depth = 0
    for token in _STRING_OR_BRACKET.finditer(raw):
        if token[0] in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token[0] in ("]", "}"):
            depth -= 1
    return False


def parse_metadata(raw: str | None) -> dict[str, Any] | None:
    """The object, or None when absent or blank; ValueError saying what is wrong."""
    if raw is None or not raw.strip():
        return None
    if nests_deeper_than(raw, MAX_METADATA_DEPTH):
        raise ValueError(
            f"metadata must nest arrays and objects at most {MAX_METADATA_DEPTH} levels deep"
        )
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ValueError(f"metadata must be a JSON object; this is not valid JSON: {exc}") from None
    if value is None:  # `null`: absent, as for every nullable field
        return None
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
