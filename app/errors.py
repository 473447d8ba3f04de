"""One error model: every error response is JSON `{"error": ..., "detail": ...}`.

`error` is a short stable phrase a client can branch on; `detail` explains what was wrong
and what is accepted. Validation errors keep FastAPI's list under `detail`.
"""

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.base import StorageUnavailable


class ErrorBody(BaseModel):
    """Body of every error response; some errors add fields (e.g. `accepted`, `task_id`)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A short stable phrase to branch on.")
    detail: Any = Field(default=None, description="What was wrong and what is accepted.")


class FieldError(BaseModel):
    type: str = Field(description="Pydantic's error type, e.g. `missing`.")
    loc: list[str | int] = Field(description='Where: e.g. ["body", "language"].')
    msg: str = Field(description="What is wrong, naming the allowed values.")
    input: Any = Field(default=None, description="The value sent, when it is a simple one.")


class ValidationErrorBody(BaseModel):
    """Body of a 422."""

    error: str = Field(description="Always `invalid request`.")
    detail: list[FieldError] = Field(description="One entry per invalid field.")


# Give every router this, so the OpenAPI page shows our 422 body, not FastAPI's default.
VALIDATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown or revoked one."},
    403: {"model": ErrorBody, "description": "The API key lacks the scope this needs."},
    422: {"model": ValidationErrorBody, "description": "A malformed id or an invalid option."},
}


class AppError(Exception):
    status_code = 500
    error = "internal error"

    def __init__(self, detail: Any = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] | None = None


class BadRequest(AppError):
    status_code = 400
    error = "bad request"


class Unauthorized(AppError):
    status_code = 401
    error = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="asr"'}


class Forbidden(AppError):
    status_code = 403
    error = "forbidden"


class TooManyRequests(AppError):
    status_code = 429
    error = "too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.headers = {"Retry-After": str(retry_after)}


class TaskNotFound(AppError):
    status_code = 404
    error = "task not found"


class NotEnabled(AppError):
    """A route whose feature this server has not switched on; the detail says how."""

    status_code = 404
    error = "not enabled"


class Conflict(AppError):
    status_code = 409
    error = "conflict"


class TranscriptNotReady(Conflict):
    """An export asked of a task that is not done; `status` says where it stands."""

    error = "transcript not ready"


class AudioGone(AppError):
    status_code = 410
    error = "audio no longer stored"


class RangeNotSatisfiable(AppError):
    status_code = 416
    error = "range not satisfiable"

    def __init__(self, detail: str, size: int) -> None:
        super().__init__(detail)
        self.headers = {"Content-Range": f"bytes */{size}"}


class PayloadTooLarge(AppError):
    status_code = 413
    error = "upload too large"


class UnsupportedMedia(AppError):
    status_code = 415
    error = "unsupported media"


class ServiceUnavailable(AppError):
    status_code = 503
    error = "service unavailable"


# Errors that mean a dependency is down or overloaded (503), not a bug (500). SQLAlchemy's
# TimeoutError: every pooled connection busy for 30 s. psycopg's own: the polled routes'
# reads (app/async_db.py), which bypass SQLAlchemy.
OUTAGES: tuple[type[Exception], ...] = (
    RedisError, OperationalError, InterfaceError, PoolTimeout, StorageUnavailable,
    psycopg.OperationalError, psycopg.InterfaceError,
)  # fmt: skip


def error_response(status_code: int, error: str, detail: Any = None, **extra: Any) -> JSONResponse:
    body = {"error": error, "detail": detail, **extra}
    return JSONResponse(jsonable_encoder(body), status_code=status_code)


def responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route can raise."""
    return {e.status_code: {"model": ErrorBody, "description": e.error} for e in errors}


def app_error_response(exc: AppError) -> JSONResponse:
    response = error_response(exc.status_code, exc.error, exc.detail, **exc.extra)
    response.headers.update(exc.headers or {})
    return response


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = getattr(exc, "error", None) or _phrase(exc.status_code)
    extra = getattr(exc, "extra", None) or {}
    response = error_response(exc.status_code, error, exc.detail, **extra)
    response.headers.update(exc.headers or {})
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: e[k] for k in ("type", "loc", "msg") if k in e} for e in exc.errors()]
    for error, raw in zip(errors, exc.errors(), strict=True):
        if isinstance(raw.get("input"), str | int | float | bool):
            error["input"] = raw["input"]  # echo simple values only, never an upload
    return error_response(422, "invalid request", errors)


def outage_body(exc: Exception) -> dict[str, str]:
    """The 503 body for one of `OUTAGES`, naming the dependency that is down."""
    if isinstance(exc, StorageUnavailable):
        dependency = "storage"
    else:
        dependency = "redis" if isinstance(exc, RedisError) else "database"
    detail = f"the {dependency} is unavailable; retry shortly"
    return {"error": "service unavailable", "detail": detail, "dependency": dependency}


def dependency_down_response(request: Request, exc: Exception) -> JSONResponse:
    """The 503 for one of `OUTAGES`, logged."""
    body = outage_body(exc)
    dependency = body["dependency"]
    logger.warning("{} {}: {} unavailable: {}", request.method, request.url.path, dependency, exc)
    return JSONResponse(body, status_code=503)


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    return dependency_down_response(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.opt(exception=exc).error("{} {}: unhandled error", request.method, request.url.path)
    return error_response(500, "internal error", "unexpected server error; it has been logged")


def _phrase(status_code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status_code).phrase.lower()
    except ValueError:
        return "error"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for outage in OUTAGES:
        app.add_exception_handler(outage, _dependency_down)
    app.add_exception_handler(Exception, _unexpected_error)
