"""The list of past and current tasks, newest first."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select

from app.auth import ReadCaller
from app.deps import ReleasingRoute, SessionDep
from app.errors import VALIDATION_RESPONSES
from app.schemas import HistoryPage
from app.views import history_record, json_response
from models import Task

router = APIRouter(
    prefix="/asr", tags=["tasks"], responses=VALIDATION_RESPONSES, route_class=ReleasingRoute
)

StatusFilter = Literal["queued", "processing", "done", "failed", "canceled"]


@router.get("/history", response_model=HistoryPage)
def read_history(
    request: Request,
    session: SessionDep,
    caller: ReadCaller,
    limit: Annotated[int, Query(ge=1, le=100, description="Records per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Records to skip.")] = 0,
    status: Annotated[StatusFilter | None, Query(description="Only this status.")] = None,
) -> Response:
    """Tasks, newest first, a page at a time."""
    query = select(Task)
    if not caller.is_admin and caller.key_id is not None:
        query = query.where(Task.api_key_id == caller.key_id)
    if status is not None:
        query = query.where(Task.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    tasks = session.scalars(
        query.order_by(Task.created_at.desc(), Task.seq.desc()).limit(limit).offset(offset)
    )
    return json_response(HistoryPage(
        total=total,
        limit=limit,
        offset=offset,
        records=[history_record(task, request) for task in tasks],
    ))  # fmt: skip
