"""The API reference: Swagger UI at /docs (its Authorize button takes an API key) and ReDoc
at /redoc, with their scripts and styles served by the API itself from the fastapi-offline
package. FastAPI's own pages load them from a CDN and stay blank on a machine offline."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.deps import ReleasingRoute

ASSETS_URL = "/docs-assets"
ASSETS_PATH = Path(fastapi_offline.__file__).resolve().parent / "static"
SWAGGER_UI_PARAMETERS = {
    # The key given to Authorize survives a reload of the page.
    "persistAuthorization": True,
    # Swagger UI would otherwise ask validator.swagger.io for a badge.
    "validatorUrl": None,
}

router = APIRouter(include_in_schema=False, route_class=ReleasingRoute)


@router.get("/docs")
def read_swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for the OpenAPI schema; nothing loaded from other hosts."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


@router.get("/redoc")
def read_redoc(request: Request) -> HTMLResponse:
    """ReDoc for the OpenAPI schema; no web fonts from other hosts."""
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


def static_files() -> StaticFiles:
    """Swagger UI's and ReDoc's files, at ASSETS_URL."""
    return StaticFiles(directory=ASSETS_PATH)
