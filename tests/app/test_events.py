"""`GET /api/v1/asr/events`: task changes as Server-Sent Events from a real uvicorn server,
announced by Postgres (the trigger of migration 0008) whichever process made them."""

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import update

from app.auth import HideQueryKeys
from app.routes.events import HEARTBEAT_SECONDS, KEY_REVOKED, RETRY_MILLISECONDS
from models import Scope, Task
from models.api_key import VISIBLE_CHARS
from models.db import session_scope
from scripts.apikey import revoke
from tests.utils.api import bearer, new_key, submitted
from tests.utils.audio import audio_file
from tests.utils.processes import uvicorn_server
from tests.utils.waiting import wait_for


@dataclass
class EventReader:
    """Reads a stream in a thread, keeping every event, `retry:` and comment it sends."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    events: list[tuple[str, dict]] = field(default_factory=list)
    retry: int | None = None
    comments: int = 0
    ended: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "EventReader":
        threading.Thread(target=self._read, daemon=True).start()
        wait_for(lambda: self.named("snapshot") or self.ended.is_set(), 15, "the snapshot")
        return self

    def _read(self) -> None:
        try:
            timeout = httpx.Timeout(10, read=HEARTBEAT_SECONDS * 3)
            with httpx.stream("GET", self.url, headers=self.headers, timeout=timeout) as response:
                self.status = response.status_code
                name = "message"
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.append((name, json.loads(line.removeprefix("data: "))))
                        name = "message"
                    elif line.startswith("retry: "):
                        self.retry = int(line.removeprefix("retry: "))
                    elif line.startswith(":"):
                        self.comments += 1
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def named(self, name: str) -> list[dict]:
        return [data for event, data in self.events if event == name]

    def of_task(self, task_id: str) -> list[dict]:
        return [data for data in self.named("task") if data["task_id"] == task_id]


def test_a_stream_follows_a_task_from_queued_to_done(api_server, live_worker, settings):
    key = new_key(settings, "page", [Scope.SUBMIT, Scope.READ])
    reader = EventReader(f"{api_server}/api/v1/asr/events", bearer(key)).start()
    assert reader.status == 200 and reader.retry == RETRY_MILLISECONDS
    assert reader.named("snapshot") == [{"tasks": []}]

    task_id = submitted(api_server, audio_file("jfk.flac"), headers=bearer(key))
    wait_for(lambda: any(e["status"] == "done" for e in reader.of_task(task_id)), 120, "done")
    events = reader.of_task(task_id)
    statuses = [e["status"] for e in events]
    assert events[0]["op"] == "insert" and statuses[0] == "queued"
    assert "processing" in statuses and statuses[-1] == "done"
    assert statuses.index("processing") < statuses.index("done")
    first = statuses.index("processing")
    assert set(statuses[first:]) == {"processing", "done"}  # no step back
    progress = [e["progress"] for e in events[first:]]
    assert progress == sorted(progress) and progress[-1] == 100
    done = events[-1]
    assert done["filename"] == "jfk.flac" and done["model"] == "tiny.en"
    assert done["duration"] > 10 and done["rtf"] > 0 and done["error"] is None
    assert "api_key_id" not in done

    deleted = httpx.delete(f"{api_server}/api/v1/asr/task/{task_id}", headers=bearer(key))
    assert deleted.status_code == 204
    wait_for(lambda: reader.of_task(task_id)[-1]["op"] == "delete", 10, "the delete event")


def test_a_key_sees_only_its_own_tasks_events(api_server, settings):
    alice = new_key(settings, "alice", [Scope.SUBMIT, Scope.READ])
    bob = new_key(settings, "bob", [Scope.SUBMIT, Scope.READ])
    admin = new_key(settings, "ops", [Scope.ADMIN])
    earlier = submitted(
        api_server, audio_file("jfk.flac"), headers=bearer(alice)
    )  # before the streams open: in their snapshots
    streams = {
        who: EventReader(f"{api_server}/api/v1/asr/events", bearer(key)).start()
        for who, key in (("alice", alice), ("bob", bob), ("admin", admin))
    }
    assert [t["task_id"] for t in streams["alice"].named("snapshot")[0]["tasks"]] == [earlier]
    assert streams["alice"].named("snapshot")[0]["tasks"][0]["position"] == 1
    assert streams["bob"].named("snapshot") == [{"tasks": []}]
    assert len(streams["admin"].named("snapshot")[0]["tasks"]) == 1

    task_id = submitted(api_server, audio_file("jfk.flac"), headers=bearer(alice))
    # Another process (here the test, as a worker or the sweeper would) changes the row.
    with session_scope(settings.DATABASE_URL) as session:
        session.execute(update(Task).where(Task.id == task_id).values(status="failed"))
    wait_for(lambda: len(streams["admin"].of_task(task_id)) == 2, 10, "the admin's events")
    assert [e["status"] for e in streams["alice"].of_task(task_id)] == ["queued", "failed"]
    assert streams["alice"].of_task(task_id)[0]["position"] == 2
    # Bob's stream stays open (keepalive comments) and carries nothing of Alice's.
    wait_for(lambda: streams["bob"].comments, HEARTBEAT_SECONDS + 5, "a keepalive")
    assert streams["bob"].named("task") == [] and not streams["bob"].ended.is_set()


def test_the_stream_takes_the_key_in_the_query_and_refuses_without_one(api_server, settings):
    key = new_key(settings, "page", [Scope.READ])
    events = f"{api_server}/api/v1/asr/events"
    assert httpx.get(events).status_code == 401
    assert httpx.get(f"{events}?api_key=asr_wrong").status_code == 401
    reader = EventReader(f"{events}?api_key={key}").start()
    assert reader.status == 200 and reader.named("snapshot") == [{"tasks": []}]
    writer = new_key(settings, "no-read", [Scope.SUBMIT])
    assert httpx.get(f"{events}?api_key={writer}").status_code == 403


def test_a_revoked_keys_open_streams_end_within_seconds_saying_why(api_server, settings):
    key = new_key(settings, "page", [Scope.READ])
    other = new_key(settings, "other", [Scope.READ])
    events = f"{api_server}/api/v1/asr/events"
    streams = [
        EventReader(events, bearer(key)).start(),
        EventReader(f"{events}?api_key={key}").start(),
    ]
    unrelated = EventReader(events, bearer(other)).start()
    assert all(s.status == 200 for s in [*streams, unrelated])

    assert revoke(key[:VISIBLE_CHARS]) == 0  # what `scripts/apikey.py revoke` runs
    for stream in streams:
        assert stream.ended.wait(15), "the stream of a revoked key stayed open"
        assert stream.events[-1] == ("error", KEY_REVOKED)
    assert not unrelated.ended.is_set()


def test_an_open_stream_does_not_keep_the_server_from_stopping(settings, tmp_path: Path):
    with uvicorn_server(tmp_path / "web.log", AUTH_ENABLED="false") as url:
        reader = EventReader(f"{url}/api/v1/asr/events").start()
        assert reader.status == 200
        stopping = time.monotonic()
    # uvicorn waits for open responses; had the stream not ended itself, the test's stop()
    # would have killed it after 30 s.
    assert time.monotonic() - stopping < 20
    assert reader.ended.wait(10)


def test_query_keys_are_masked_in_uvicorns_access_log():
    line = '%s - "%s %s HTTP/%s" %d'
    path = "/api/v1/asr/events?x=1&api_key=asr_secret&y=2"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, line,
                               ("127.0.0.1", "GET", path, "1.1", 200), None)  # fmt: skip
    HideQueryKeys().filter(record)
    assert record.getMessage().endswith('"GET /api/v1/asr/events?x=1&api_key=***&y=2 HTTP/1.1" 200')


def test_a_new_row_announced_before_its_job_is_enqueued_has_its_place(settings, redis):
    """The insert is announced at the row's commit, a moment before the job is enqueued: its
    position then comes from the queued rows ahead of it, not null."""
    import json as json_module

    from app.auth import Caller
    from app.events import TaskEventHub
    from models import TaskStatus
    from tests.utils.records import make_task

    first = make_task(settings, TaskStatus.QUEUED, timedelta(minutes=2))
    second = make_task(settings, TaskStatus.QUEUED, timedelta(minutes=1))  # no job yet, either
    hub = TaskEventHub(settings, redis)
    notice = {"task_id": str(second), "op": "insert", "status": "queued", "progress": 0}
    assert hub.describe(json_module.dumps(notice)).position == 2
    positions = {e.task_id: e.position for e in hub.snapshot(Caller(None, frozenset()), 10)}
    assert positions == {first: 1, second: 2}
