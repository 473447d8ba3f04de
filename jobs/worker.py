"""Worker entry point: `python -m jobs.worker [--burst]`.

A `SimpleWorker` runs jobs in its own process, so the model loaded before the first job is
kept for every later one (the default forking worker would lose it, and CTranslate2/CUDA do
not survive `fork()`).
"""

import argparse
import os
import socket
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger
from rq import SimpleWorker

from app.config import Settings, configure_logging, get_settings
from jobs.queues import (
    WorkerInfo,
    connect_redis,
    remove_worker_heartbeat,
    worker_queues,
    write_worker_heartbeat,
)
from jobs.transcription import engine, inflight, shutdown
from jobs.upkeep.liveness import process_identity
from jobs.upkeep.reconciler import reconcile


class TranscriptionWorker(SimpleWorker):
    """Loads the model in `work()`, not `__init__`: `__init__` also runs wherever
    `Worker.all()` rebuilds worker objects (the API must not load a model)."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        settings = get_settings()
        model = engine.get_model(settings)
        try:
            reconcile(settings, self.connection)
        except Exception as exc:  # the scheduled pass will try again; start serving anyway
            logger.opt(exception=exc).error("worker {}: start-up reconcile failed", self.name)
        heartbeat = WorkerHeartbeat(self, model, settings)
        heartbeat.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            heartbeat.stop()

    def request_stop(self, signum: Any, frame: Any) -> None:
        """First SIGTERM/SIGINT: RQ lets the current job finish; the job's checkpoint puts
        the task back if that takes longer than WORKER_SHUTDOWN_GRACE_SECONDS."""
        shutdown.request()
        super().request_stop(signum, frame)


class WorkerHeartbeat(threading.Thread):
    """Keeps a short-lived key alive while the process lives, busy or idle.

    RQ refreshes its own worker key only between jobs, so a killed worker would look alive
    for up to job_timeout + 60 s; this key expires WORKER_HEARTBEAT_TTL_SECONDS after death.
    """

    def __init__(self, worker: SimpleWorker, model: engine.LoadedModel, settings: Settings) -> None:
        super().__init__(name="worker-heartbeat", daemon=True)
        self.worker = worker
        self.model = model
        self.ttl = settings.WORKER_HEARTBEAT_TTL_SECONDS
        self.started_at = datetime.now(UTC).isoformat()
        # Lets the reconciler tell this process, starved, from a dead one when beats lapse.
        self.process = process_identity(os.getpid())
        self.stopped = threading.Event()
        # A batch's tasks are announced at once, not at the next beat.
        inflight.on_change(self.beat_now)

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat()
            except Exception as exc:  # a Redis blip must not kill the heartbeat
                logger.warning("worker {}: heartbeat failed: {}", self.worker.name, exc)
            self.stopped.wait(self.ttl / 3)

    def beat_now(self) -> None:
        try:
            self.beat()
        except Exception as exc:
            logger.warning("worker {}: heartbeat failed: {}", self.worker.name, exc)

    def beat(self) -> None:
        current = self.worker.get_current_job_id()
        info = WorkerInfo(
            name=self.worker.name,
            queues=self.worker.queue_names(),
            model=self.model.name,
            device=self.model.device,
            compute_type=self.model.compute_type,
            state="busy" if current else "idle",
            current_task=current,
            tasks=inflight.current(),
            load=round(os.getloadavg()[0], 2),
            rss_mb=round(resident_memory_bytes() / 1e6, 1),
            pid=os.getpid(),
            hostname=socket.gethostname(),
            started_at=self.started_at,
            last_seen=datetime.now(UTC).isoformat(),
            process=self.process,
        )
        write_worker_heartbeat(self.worker.connection, info, self.ttl)

    def stop(self) -> None:
        inflight.stop_listening(self.beat_now)
        self.stopped.set()
        self.join(timeout=5)
        try:
            remove_worker_heartbeat(self.worker.connection, self.worker.name)
        except Exception as exc:
            logger.warning("worker {}: could not remove heartbeat: {}", self.worker.name, exc)


def resident_memory_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0  # not Linux: report nothing rather than fail the heartbeat
    return pages * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a transcription worker.")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--name", help="worker name (default: host.pid)")
    parser.add_argument("--model", help="the model to load and serve (default: WORKER_MODEL, "
                        "else WHISPER_MODEL); one of WHISPER_MODELS")  # fmt: skip
    parser.add_argument("--lane", choices=["all", "short"],
                        help="short: only recordings of at most SHORT_MAX_SECONDS (default: "
                        "WORKER_LANE, else all: short ones first, then the rest)")  # fmt: skip
    args = parser.parse_args(argv)
    # Also for anything reading the settings later.
    for name, value in (("WORKER_MODEL", args.model), ("WORKER_LANE", args.lane)):
        if value:
            os.environ[name] = value
    get_settings.cache_clear()

    settings = get_settings()
    if settings.worker_model not in settings.offered_models:
        logger.error("worker: cannot start: model {!r} is not offered (WHISPER_MODELS: {})",
                     settings.worker_model, ", ".join(settings.offered_models))  # fmt: skip
        return 2
    configure_logging(settings, "worker", capture_stdlib=True)
    redis = connect_redis(settings.REDIS_URL)
    queues = worker_queues(redis, settings, settings.worker_model, settings.WORKER_LANE)
    worker = TranscriptionWorker(
        queues, connection=redis, name=args.name or f"{socket.gethostname()}.{os.getpid()}"
    )
    try:
        # RQ logs through the standard library, which lacks loguru's TRACE and SUCCESS.
        rq_level = {"TRACE": "DEBUG", "SUCCESS": "INFO"}.get(settings.LOG_LEVEL, settings.LOG_LEVEL)
        worker.work(burst=args.burst, logging_level=rq_level)
    except engine.ModelNotFound as exc:
        logger.error("worker: cannot start: {}", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
