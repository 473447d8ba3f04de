"""The OpenAPI schema, with the security schemes on every route that takes an API key.

Keys are read by one plain dependency (app/auth.py), not by FastAPI `Security` dependencies,
which FastAPI would solve on every request; so the schema learns which routes are keyed
here instead, from their dependencies."""

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth import KEYED, SECURITY_SCHEMES

SECURITY: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        schema = FastAPI.openapi(app)  # FastAPI's own, cached until the routes change
        add_security(app, schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def add_security(app: FastAPI, schema: dict[str, Any]) -> None:
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for route in iter_route_contexts(app.routes):  # the included routers' routes too
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        if any(call in KEYED for call in _calls(route.dependant)):
            for method in route.methods or ():
                schema["paths"][route.path_format][method.lower()]["security"] = SECURITY


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)
