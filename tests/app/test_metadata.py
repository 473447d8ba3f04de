"""Client metadata: a JSON object stored with the task, echoed in the result and history."""

import json

import pytest
from sqlalchemy import func, select

from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.records import history_lines

CHAT = {"chat_id": 1, "message_id": 2, "from": {"name": "Zoë"}}


def test_metadata_is_echoed_in_the_result_and_the_history_line(client, run_worker, settings):
    response = submit(client, audio_file("jfk.flac"), metadata=json.dumps(CHAT))
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert result(client, task_id)["metadata"] == CHAT

    run_worker()

    done = result(client, task_id)
    assert done["status"] == "done" and done["metadata"] == CHAT
    [line] = history_lines(settings)
    assert line["task_id"] == task_id and line["metadata"] == CHAT


def test_metadata_nested_32_levels_deep_is_stored_and_read_back(client):
    nested = {"a": json.loads("[" * 31 + "]" * 31), "text": "[[[{{ not brackets"}
    response = submit(client, audio_file("jfk.flac"), metadata=json.dumps(nested))
    assert response.status_code == 202, response.text
    assert result(client, response.json()["task_id"])["metadata"] == nested


def test_a_task_without_metadata_echoes_null(client):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    assert result(client, task_id)["metadata"] is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("[1, 2]", "JSON object, not a list"),
        ('"chat"', "JSON object, not a str"),
        ("{chat_id: 1}", "not valid JSON"),
        ('{"x": NaN}', "not valid JSON"),
        ('{"x": "a\\u0000b"}', "NUL"),
        (json.dumps({"note": "x" * 4096}), "at most 4096 bytes"),
        # Too deep for the JSON parser's recursion; 300 levels, too deep for the serializer
        # of every later read, fit in 606 bytes.
        ("[" * 10_000 + "]" * 10_000, "at most 32 levels deep"),
        ('{"a":' + "[" * 299 + "]" * 299 + "}", "at most 32 levels deep"),
        ('{"a":' + "[" * 32 + "]" * 32 + "}", "at most 32 levels deep"),
    ],
)
def test_invalid_metadata_is_422_naming_the_field(client, settings, value, says):
    response = submit(client, audio_file("jfk.flac"), metadata=value)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "metadata"]
    assert "metadata" in error["msg"] and says in error["msg"]
    with session_scope(settings.DATABASE_URL) as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
    assert not any(settings.recordings_path.glob("*"))
