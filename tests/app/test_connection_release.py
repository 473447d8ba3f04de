"""Routes give their database connection back to the pool as they return, before FastAPI
serializes the response in another thread-pool hop: under 500 pollers, connections held
across that hop starved the pool while every thread waited for one."""

from typing import Annotated

import fastapi.routing
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, computed_field
from sqlalchemy import func, select

from app.config import Settings
from app.deps import ReleasingRoute, SessionDep
from app.main import create_app
from models import Task
from models.db import get_engine
from tests.utils.api import submit
from tests.utils.audio import audio_file


def count_tasks(session: SessionDep) -> int:
    return session.scalar(select(func.count()).select_from(Task)) or 0


def app_with_probes(settings: Settings) -> FastAPI:
    """The real app plus routes whose response reports how many pooled connections were
    checked out while it was being serialized, under a plain and a releasing route class."""
    pool = get_engine(settings.DATABASE_URL).pool

    class PoolProbe(BaseModel):
        tasks: int

        @computed_field
        @property
        def checked_out_while_serializing(self) -> int:
            return pool.checkedout()

    app = create_app(settings)
    for route_class in (APIRoute, ReleasingRoute):
        router = APIRouter(prefix=f"/probe/{route_class.__name__}", route_class=route_class)

        @router.get("/session")
        def read_with_session(session: SessionDep) -> PoolProbe:
            return PoolProbe(tasks=count_tasks(session))

        @router.get("/nested")  # the session only in a sub-dependency, as in `authenticate`
        def read_with_nested_session(tasks: Annotated[int, Depends(count_tasks)]) -> PoolProbe:
            return PoolProbe(tasks=tasks)

        app.include_router(router)
    return app


@pytest.mark.parametrize("route", ["session", "nested"])
def test_releasing_route_returns_the_connection_before_serializing(settings, route):
    pool = get_engine(settings.DATABASE_URL).pool
    with TestClient(app_with_probes(settings)) as client:
        before = pool.checkedout()
        plain = client.get(f"/probe/APIRoute/{route}").json()
        releasing = client.get(f"/probe/ReleasingRoute/{route}").json()
    # The plain route shows the problem: its connection is still out while serializing.
    assert plain == {"tasks": 0, "checked_out_while_serializing": before + 1}
    assert releasing == {"tasks": 0, "checked_out_while_serializing": before}
    assert pool.checkedout() == before


def test_api_routes_return_the_connection_before_serializing(client, settings, monkeypatch):
    pool = get_engine(settings.DATABASE_URL).pool
    checked_out: dict[str, int] = {}
    serialize = fastapi.routing.serialize_response

    async def observe(**kwargs):
        checked_out[kwargs["endpoint_ctx"].get("function", "?")] = pool.checkedout()
        return await serialize(**kwargs)

    monkeypatch.setattr(fastapi.routing, "serialize_response", observe)
    before = pool.checkedout()
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    for path in (f"/asr/result/{task_id}", "/asr/history", "/asr/queue/status", "/stats"):
        assert client.get(f"/api/v1{path}").status_code == 200, path
    assert client.post(f"/api/v1/asr/cancel/{task_id}").status_code == 200

    # read_result and read_history serialize inside the route (the polled routes answer with
    # the bytes themselves: app/polling.py, app/views.json_response), so no hop can hold
    # their connection; the rest go through FastAPI's serializing.
    assert checked_out == dict.fromkeys(
        ["submit_task", "read_queue_status", "read_stats", "cancel_task"], before
    )


def test_every_api_route_releases_its_connection(settings):
    app = create_app(settings)
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    routers = [r.original_router for r in app.routes if hasattr(r, "original_router")]
    routes += [route for router in routers for route in router.routes]
    assert len(routes) > 10
    assert [r.path for r in routes if not isinstance(r, ReleasingRoute)] == []
