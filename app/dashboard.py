"""rq-dashboard behind HTTP Basic credentials: mounted at /rq in the API, and runnable on its
own (Procfile `dashboard`): `uvicorn --factory app.dashboard:create_dashboard_app`.

Without RQ_DASHBOARD_USERNAME and RQ_DASHBOARD_PASSWORD it is never served: its "requeue
all" and delete actions have no CSRF protection, so it must not be open to anyone.
"""

import hmac
from typing import cast

import rq_dashboard
from a2wsgi import WSGIMiddleware
from flask import Flask, Response, request
from rq_dashboard.web import setup_rq_connection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth import presented_key
from app.config import Settings, get_settings
from app.errors import error_response
from models import Scope as KeyScope
from models.api_key import find_active_key
from models.db import session_scope

REALM = 'Basic realm="RQ dashboard"'


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
        if settings.AUTH_ENABLED and key and is_admin_key(settings, key):
            return None
        return Response("Credentials required.", 401, {"WWW-Authenticate": REALM})

    dashboard.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    setup_rq_connection(dashboard)
    return dashboard


def dashboard_enabled(settings: Settings) -> bool:
    """Served when someone can log in: dashboard credentials, or admin API keys."""
    password = settings.RQ_DASHBOARD_PASSWORD.get_secret_value()
    return settings.AUTH_ENABLED or bool(settings.RQ_DASHBOARD_USERNAME and password)


def is_admin_key(settings: Settings, plain: str) -> bool:
    with session_scope(settings.DATABASE_URL) as session:
        key = find_active_key(session, plain)
        return key is not None and KeyScope.ADMIN in key.scopes


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
