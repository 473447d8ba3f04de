"""Prometheus metrics at /metrics: HTTP traffic of this process, plus series read at scrape
time from Postgres (tasks), RQ (queues), heartbeats (workers) and the workers' own counters
in Redis (audio transcribed, wall time, real-time factor)."""

from collections.abc import Iterator

from fastapi import Depends, FastAPI, Request, Response
from loguru import logger
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.auth import require
from app.config import Settings
from jobs.metrics import RTF_BUCKETS, read_transcription_metrics
from jobs.queues import live_workers, model_queues
from models import Scope, Task, TaskStatus
from models.db import session_scope


class HttpMetrics:
    """Requests and latency by route template (not raw path: ids would explode the series)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "asr_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "asr_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, request: Request, status: int, seconds: float) -> None:
        template = route_template(request)
        self.requests.labels(request.method, template, str(status)).inc()
        self.latency.labels(request.method, template).observe(seconds)


def route_template(request: Request) -> str:
    """The path with its parameters put back as `{name}`; "unmatched" for unknown paths."""
    if request.scope.get("route") is None:
        return "unmatched"
    path = request.url.path
    for name, value in request.path_params.items():
        path = path.replace(str(value), "{" + name + "}", 1)
    return path


class ServiceCollector(Collector):
    """Series computed at scrape time; a dependency that is down just leaves its series out."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        try:
            yield self._tasks_by_status()
        except SQLAlchemyError as exc:
            logger.warning("metrics: task series left out, database unavailable: {}", exc)
        try:
            yield from self._redis_series()
        except RedisError as exc:
            logger.warning("metrics: queue and worker series left out, Redis unavailable: {}", exc)

    def _tasks_by_status(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("asr_tasks", "Tasks in Postgres by status.", labels=["status"])
        with session_scope(self.settings.DATABASE_URL) as session:
            counts = dict(
                session.execute(select(Task.status, func.count()).group_by(Task.status)).all()
            )
        for status in TaskStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        return family

    def _redis_series(
        self,
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily | HistogramMetricFamily]:
        depth = GaugeMetricFamily("asr_queue_depth", "Jobs waiting per RQ queue.", labels=["queue"])
        # Every model's queue and lane even while empty (RQ lists a queue only once a job
        # was put in it), and any other queue RQ knows.
        queues = {q.name: q for q in model_queues(self.redis, self.settings)}
        queues.update((q.name, q) for q in Queue.all(connection=self.redis))
        for name, queue in sorted(queues.items()):
            depth.add_metric([name], queue.count)
        yield depth
        workers = GaugeMetricFamily(
            "asr_workers_live",
            "Workers with a live heartbeat.",
            labels=["model", "device", "state"],
        )
        seen: dict[tuple[str, str, str], int] = {}
        for worker in live_workers(self.redis):
            labels = (worker.model, worker.device, worker.state)
            seen[labels] = seen.get(labels, 0) + 1
        for labels, count in seen.items():
            workers.add_metric(list(labels), count)
        yield workers

        totals, buckets = read_transcription_metrics(self.redis)
        yield CounterMetricFamily(
            "asr_audio_seconds_transcribed",
            "Audio transcribed by workers.",
            value=totals.get("audio_seconds", 0.0),
        )
        yield CounterMetricFamily(
            "asr_transcription_wall_seconds",
            "Worker time spent transcribing.",
            value=totals.get("wall_seconds", 0.0),
        )
        cumulative, running = [], 0
        for bound in [*map(str, RTF_BUCKETS), "+Inf"]:
            running += buckets.get(bound, 0)
            cumulative.append((bound, running))
        yield HistogramMetricFamily(
            "asr_transcription_rtf",
            "Real-time factor per transcription (wall / audio seconds).",
            buckets=cumulative,
            sum_value=totals.get("rtf_sum", 0.0),
        )


def install_metrics(app: FastAPI, settings: Settings, redis: Redis) -> HttpMetrics:
    """A registry per app (tests build several apps in one process), the /metrics route, and
    the request observer the access-log middleware calls."""
    registry = CollectorRegistry()
    http = HttpMetrics(registry)
    registry.register(ServiceCollector(settings, redis))

    @app.get(
        "/metrics",
        dependencies=[Depends(require(Scope.ADMIN))],
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def read_metrics() -> Response:
        """Prometheus metrics in the text exposition format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return http
