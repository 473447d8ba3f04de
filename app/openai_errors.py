"""OpenAI's error shape for the OpenAI-compatible routes: `{"error": {"message", "type",
"param", "code"}}`, which OpenAI's SDKs turn into their exceptions (BadRequestError, ...)."""

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.deps import ReleasingRoute
from app.errors import OUTAGES, AppError, outage_body

# OpenAI's error `type` by HTTP status; anything else 4xx is an invalid request.
ERROR_TYPES = {
    401: "invalid_request_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
ERROR_CODES = {401: "invalid_api_key", 413: "file_too_large", 415: "invalid_file_format",
               429: "rate_limit_exceeded", 503: "service_unavailable"}  # fmt: skip


class OpenAIErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, in words.")
    type: str = Field(description="`invalid_request_error`, `server_error`, ...")
    param: str | None = Field(default=None, description="The form field at fault, if one is.")
    code: str | None = Field(default=None, description="A stable code, e.g. `model_not_found`.")


class OpenAIErrorBody(BaseModel):
    """Every error of the OpenAI-compatible routes, in OpenAI's own shape."""

    error: OpenAIErrorDetail = Field(description="The error.")


def error_body(
    status_code: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    kind = "server_error" if status_code >= 500 else ERROR_TYPES.get(status_code)
    detail = OpenAIErrorDetail(
        message=message,
        type=kind or "invalid_request_error",
        param=param,
        code=code or ERROR_CODES.get(status_code),
    )
    return OpenAIErrorBody(error=detail).model_dump()


class OpenAIRoute(ReleasingRoute):
    """Answers every error of its routes in OpenAI's shape, which OpenAI's SDKs parse into
    their exceptions; validation errors are 400s there, as OpenAI sends them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_openai(request: Request) -> Response:
            try:
                return await handle(request)
            except Exception as exc:
                return openai_error(request, exc)

        return handle_openai


def openai_error(request: Request, exc: Exception) -> JSONResponse:
    headers: dict[str, str] = {}
    param = code = None
    if isinstance(exc, AppError):
        status, message, headers = exc.status_code, str(exc.detail), exc.headers or {}
        param, code = exc.extra.get("param"), exc.extra.get("code")
    elif isinstance(exc, RequestValidationError | ValidationError):
        errors = exc.errors()
        status, code = 400, "invalid_value"
        fields = [_field(e["loc"]) for e in errors]
        param = next((f for f in fields if f), None)
        message = "; ".join(f"{f}: {e['msg']}" if f else e["msg"]
                            for f, e in zip(fields, errors, strict=True))  # fmt: skip
    elif isinstance(exc, StarletteHTTPException):
        status, message, headers = exc.status_code, str(exc.detail), dict(exc.headers or {})
    elif isinstance(exc, OUTAGES):
        logger.warning("{} {}: dependency unavailable: {}", request.method, request.url.path, exc)
        dependency = outage_body(exc)["dependency"]
        status, message = 503, f"the service's {dependency} is unavailable; retry shortly"
    else:
        logger.opt(exception=exc).error("{} {}: unhandled error", request.method, request.url.path)
        status, message = 500, "unexpected server error; it has been logged"
    body = error_body(status, message, param=param, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: Sequence[Any]) -> str | None:
    """The form field an error is about: `("body", "language")` → `language`."""
    names = [part for part in loc if isinstance(part, str) and part not in ("body", "query")]
    return names[0] if names else None
