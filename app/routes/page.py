"""The web page at `/`: plain HTML, CSS and JavaScript from app/web/, no build step and
nothing loaded from elsewhere (the machine may be offline)."""

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.deps import ReleasingRoute, SettingsDep

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
# Only this origin's own files; blob: for the transcript downloads the page builds.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False, route_class=ReleasingRoute)


@router.get("/", response_class=HTMLResponse)
def read_page(settings: SettingsDep) -> HTMLResponse:
    """The upload page, told this server's limits and models through `data-` attributes."""
    attributes = {
        "data-auth": str(settings.AUTH_ENABLED).lower(),
        "data-max-upload-mb": str(settings.MAX_UPLOAD_MB),
        "data-models": ",".join(settings.offered_models),
        "data-default-model": settings.WHISPER_MODEL,
    }
    body = " ".join(f'{name}="{html.escape(value)}"' for name, value in attributes.items())
    page = (WEB_ROOT / "index.html").read_text().replace("<body>", f"<body {body}>", 1)
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def static_files() -> StaticFiles:
    """app/web/ at /static (the page's script and style sheet)."""
    return StaticFiles(directory=WEB_ROOT)
