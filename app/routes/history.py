"""The list of past and current tasks, newest first."""

import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import Select, bindparam, func, select

from app.async_db import AsyncDatabase
from app.auth import ReadCaller
from app.deps import ReleasingRoute
from app.errors import VALIDATION_RESPONSES
from app.schemas import HistoryPage
from app.views import history_record, json_response
from models import Task
from models.task import task_snapshot

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)

StatusFilter = Literal["queued", "processing", "done", "failed", "canceled"]


@functools.cache
def history_statements(own_only: bool, by_status: bool) -> tuple[Select[Any], Select[Any]]:
    """The page's count and rows, in the four shapes the filters give, built once each."""
    query = select(Task)
    if own_only:
        query = query.where(Task.api_key_id == bindparam("key_id"))
    if by_status:
        query = query.where(Task.status == bindparam("status"))
    count = select(func.count().label("total")).select_from(query.subquery())
    page = query.order_by(Task.created_at.desc(), Task.seq.desc())
    return count, page.limit(bindparam("limit")).offset(bindparam("offset"))


@router.get("/history", response_model=HistoryPage)
async def read_history(
    request: Request,
    caller: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=100, description="Records per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Records to skip.")] = 0,
    status: Annotated[StatusFilter | None, Query(description="Only this status.")] = None,
) -> Response:
    """Tasks, newest first, a page at a time."""
    # Clients poll this too: on the event loop, through app/async_db.py.
    db: AsyncDatabase = request.app.state.db
    own_only = not caller.is_admin and caller.key_id is not None
    count, page = history_statements(own_only, status is not None)
    filters = {"key_id": caller.key_id, "status": status}
    total = await db.fetch_one(count, **filters)
    rows = await db.fetch_all(page, **filters, limit=limit, offset=offset)
    return json_response(HistoryPage(
        total=total["total"] if total else 0,
        limit=limit,
        offset=offset,
        records=[history_record(task_snapshot(row), request) for row in rows],
    ))  # fmt: skip
