"""rq-dashboard behind HTTP Basic credentials: mounted at /rq in the API, and runnable on its
own (Procfile `dashboard`): `uvicorn --factory app.dashboard:create_dashboard_app`.

Without RQ_DASHBOARD_USERNAME and RQ_DASHBOARD_PASSWORD it is never served: its "requeue
all" and delete actions have no CSRF protection, so it must not be open to anyone.
"""

import hmac
import json
from typing import cast

import rq_dashboard
from a2wsgi import WSGIMiddleware
from flask import Flask, Response, request
from rq_dashboard.web import setup_rq_connection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth import presented_key
from app.config import Settings, get_settings
from app.errors import OUTAGES, error_response, outage_body
from models import Scope as KeyScope
from models.api_key import find_active_key
from models.db import session_scope

REALM = 'Basic realm="RQ dashboard"'
CREDENTIALS_DOC = (
    "log in with the dashboard's credentials (HTTP Basic), or with an admin API key: as "
    "`Authorization: Bearer <key>`, `X-API-Key`, or the Basic-auth password"
)


def build_dashboard(settings: Settings) -> Flask:
    # Named after rq_dashboard so its templates find their own static files.
    dashboard = Flask(rq_dashboard.__name__)
    dashboard.config["RQ_DASHBOARD_REDIS_URL"] = settings.REDIS_URL
    username = settings.RQ_DASHBOARD_USERNAME
    password = settings.RQ_DASHBOARD_PASSWORD.get_secret_value()

    # On the app, not the blueprint: the blueprint is module-global and registered per app.
    @dashboard.before_request
    def require_credentials() -> Response | None:
        auth = request.authorization
        if (
            auth
            and username
            and password
            and hmac.compare_digest(auth.username or "", username)
            and hmac.compare_digest(auth.password or "", password)
        ):
            return None
        # Or an admin API key: as the Basic password (what a browser can send), or as a
        # Bearer / X-API-Key header.
        headers = {name.lower(): value for name, value in request.headers.items()}
        key = presented_key(headers) or (auth.password if auth else None)
        scopes = key_scopes(settings, key) if settings.AUTH_ENABLED and key else None
        if scopes is not None and KeyScope.ADMIN in scopes:
            return None
        if scopes is not None:
            return _json_error(403, "forbidden", "this API key lacks the `admin` scope")
        response = _json_error(401, "unauthorized", CREDENTIALS_DOC)
        response.headers["WWW-Authenticate"] = REALM
        return response

    for outage in OUTAGES:
        dashboard.register_error_handler(outage, _dependency_down)
    dashboard.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    setup_rq_connection(dashboard)
    return dashboard


def dashboard_enabled(settings: Settings) -> bool:
    """Served when someone can log in: dashboard credentials, or admin API keys."""
    password = settings.RQ_DASHBOARD_PASSWORD.get_secret_value()
    return settings.AUTH_ENABLED or bool(settings.RQ_DASHBOARD_USERNAME and password)


def key_scopes(settings: Settings, plain: str) -> list[str] | None:
    """The scopes of an active API key; None for an unknown or revoked one."""
    with session_scope(settings.DATABASE_URL) as session:
        key = find_active_key(session, plain)
        return None if key is None else list(key.scopes)


def _json_error(status: int, error: str, detail: str) -> Response:
    return _json(status, {"error": error, "detail": detail})


def _dependency_down(exc: Exception) -> Response:
    return _json(503, outage_body(exc))


def _json(status: int, body: dict[str, str]) -> Response:
    """A body in the API's error model (the dashboard is Flask, outside its handlers)."""
    return Response(json.dumps(body), status, mimetype="application/json")


async def _disabled(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        503, "dashboard disabled",
        "set RQ_DASHBOARD_USERNAME and RQ_DASHBOARD_PASSWORD (or AUTH_ENABLED=true, to log "
        "in with an admin API key) to serve the RQ dashboard",
    )  # fmt: skip
    await response(scope, receive, send)


def dashboard_asgi(settings: Settings) -> ASGIApp:
    """The dashboard as an ASGI app, or a 503 explaining how to enable it."""
    if not dashboard_enabled(settings):
        return _disabled
    return cast(ASGIApp, WSGIMiddleware(build_dashboard(settings)))  # type: ignore[arg-type]


def create_dashboard_app() -> ASGIApp:
    """Entry point of the standalone dashboard process."""
    return dashboard_asgi(get_settings())


if __name__ == "__main__":
    import uvicorn

    settings = get_settings()
    uvicorn.run(dashboard_asgi(settings), host=settings.RQ_DASHBOARD_BIND,
                port=settings.RQ_DASHBOARD_PORT)  # fmt: skip
