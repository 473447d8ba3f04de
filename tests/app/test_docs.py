"""/docs and /redoc work offline: every script, style sheet and icon they load comes from
this server (fastapi-offline's files), and Swagger UI's Authorize takes an API key."""

import re

import pytest

ASSET_REFERENCE = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'")\s>]+)""")


def assets_of(html: str) -> list[str]:
    return [url for url in ASSET_REFERENCE.findall(html) if not url.startswith("#")]


@pytest.mark.parametrize(
    ("page", "script"),
    [
        ("/docs", "/docs-assets/swagger-ui-bundle.js"),
        ("/redoc", "/docs-assets/redoc.standalone.js"),
    ],
)
def test_docs_page_loads_nothing_from_other_hosts(client, page: str, script: str):
    html = client.get(page).text

    assert "//" not in " ".join(assets_of(html)), assets_of(html)  # no http://, https://, //host
    assert "http://" not in html and "https://" not in html, html
    assert script in assets_of(html)
    for url in assets_of(html):
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    body = client.get(script)
    assert "javascript" in body.headers["content-type"] and len(body.content) > 500_000


def test_swagger_ui_offers_authorize_for_an_api_key(client):
    html = client.get("/docs").text
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["apiKey"] == {**schemes["apiKey"], "in": "header", "name": "X-API-Key"}
    assert '"persistAuthorization": true' in html  # the key survives a reload
    assert '"validatorUrl": null' in html  # no badge from validator.swagger.io
