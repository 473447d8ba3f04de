"""`GET /api/v1/asr/events`: task changes as Server-Sent Events, for the web page and any
other client. The format is described in the README ("Task events")."""

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.auth import BrowserReadCaller, Caller
from app.deps import ReleasingRoute
from app.errors import VALIDATION_RESPONSES, ServiceUnavailable, responses
from app.events import KEY_CHECK_SECONDS, RESET, TaskEvent, TaskEventHub

HEARTBEAT_SECONDS = 15.0
# How soon a stream notices that the server is stopping.
TICK_SECONDS = 1.0
# Tells EventSource how long to wait before reconnecting.
RETRY_MILLISECONDS = 3000
SNAPSHOT_TASKS = 50
# The last event of a stream whose key was revoked while it was open.
KEY_REVOKED = {"error": "api key revoked", "detail": "the API key of this stream was revoked"}
STREAM_DOC = (
    "A text/event-stream. First `retry:`, then `event: snapshot` with the caller's newest "
    f"{SNAPSHOT_TASKS} tasks, then `event: task` for every change (insert, update of status "
    "or progress, delete) of a task the caller may see, and a `: keepalive` comment every "
    f"{HEARTBEAT_SECONDS:.0f} s. A new `snapshot` replaces everything the client knew (sent "
    "again after events were lost); there are no event ids to resume from. A revoked key's "
    f"stream ends within seconds (keys are checked every {KEY_CHECK_SECONDS:.0f} s) with a "
    'last `event: error`, `{"error": "api key revoked", ...}`.'
)

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC},
        **responses(ServiceUnavailable),
    },
)
async def stream_events(request: Request, caller: BrowserReadCaller) -> StreamingResponse:
    """Task changes as they happen (Server-Sent Events); the key may be sent as `?api_key=`
    because EventSource cannot send headers."""
    hub: TaskEventHub = request.app.state.task_events
    try:
        await hub.start()
    except TimeoutError:
        raise ServiceUnavailable(
            "the database is unavailable; retry shortly", dependency="database"
        ) from None
    return StreamingResponse(
        event_stream(hub, caller, server_stopping()),
        media_type="text/event-stream",
        # no-transform and X-Accel-Buffering: proxies must pass events on as they come.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


async def event_stream(
    hub: TaskEventHub, caller: Caller, stopping: Callable[[], bool]
) -> AsyncIterator[str]:
    with hub.subscription(caller.key_id) as subscription:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        yield await snapshot_frame(hub, caller)
        last_sent = time.monotonic()
        while not stopping():
            if subscription.key_revoked:
                yield frame("error", json.dumps(KEY_REVOKED))
                return
            try:
                item = await asyncio.wait_for(subscription.queue.get(), TICK_SECONDS)
            except TimeoutError:
                if time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                    last_sent = time.monotonic()
                    yield ": keepalive\n\n"
                continue
            if item is RESET:
                yield await snapshot_frame(hub, caller)
            elif isinstance(item, TaskEvent) and caller.may_see(item.api_key_id):
                yield frame("task", item.model_dump_json())
            else:
                continue
            last_sent = time.monotonic()


async def snapshot_frame(hub: TaskEventHub, caller: Caller) -> str:
    tasks = await asyncio.to_thread(hub.snapshot, caller, SNAPSHOT_TASKS)
    body = json.dumps({"tasks": [task.model_dump(mode="json") for task in tasks]})
    return frame("snapshot", body)


def frame(event: str, data: str) -> str:
    """One event; `data` is single-line JSON, so it needs one `data:` line."""
    return f"event: {event}\ndata: {data}\n\n"


def server_stopping() -> Callable[[], bool]:
    """uvicorn waits for every response to end before it stops, and an event stream never
    ends by itself: streams watch the exit flag of the uvicorn server, found through the
    SIGTERM handler it installs. Elsewhere (tests, other servers) the flag stays false."""
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return lambda: bool(getattr(server, "should_exit", False))
