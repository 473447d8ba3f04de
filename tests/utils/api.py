"""Submitting and reading tasks through the API, and API keys: for a TestClient, an
`httpx.Client(base_url=...)` or the base URL of a live server alike."""

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from models import Scope
from models.api_key import create_key
from models.db import session_scope

SUBMIT = "/api/v1/asr/submit"


# A TestClient, an httpx.Client with a base URL, or a live server's base URL.
Api = Any


@contextmanager
def _client(api: Api) -> Iterator[Any]:
    if isinstance(api, str):
        with httpx.Client(base_url=api, timeout=30) as client:
            yield client
    else:
        yield api


def submit(
    api: Api, path: Path, name: str | None = None, headers: dict[str, str] | None = None,
    **fields: str,
) -> httpx.Response:  # fmt: skip
    """Upload `path` (named `name` if given) with form `fields`."""
    with _client(api) as client, path.open("rb") as audio:
        return client.post(
            SUBMIT, files={"audio": (name or path.name, audio)}, data=fields, headers=headers
        )


def submitted(api: Api, path: Path, headers: dict[str, str] | None = None, **fields: str) -> str:
    """The task id of an upload the API must take (202)."""
    response = submit(api, path, headers=headers, **fields)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def result(api: Api, task_id: str, **headers: str) -> dict:
    with _client(api) as client:
        response = client.get(f"/api/v1/asr/result/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def statuses(api: Api, task_ids: list[str]) -> list[str]:
    return [result(api, task_id)["status"] for task_id in task_ids]


def new_key(settings: Settings, name: str, scopes: list[Scope]) -> str:
    with session_scope(settings.DATABASE_URL) as session:
        return create_key(session, name, scopes)[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
