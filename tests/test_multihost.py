"""The API and the workers on different hosts that share nothing but the network.

Network namespaces made by the test stand for machines (tests/utils/hosts.py): this one is
the "api" host, running the web process, Postgres and Redis (relayed to its bridge address)
and the S3 server (moto's, the declared stand-in; it listens on the bridge address); "gpu1"
and "gpu2" each run a worker with an empty STORAGE_PATH of its own. docs/DEPLOYMENT.md shows
the same by hand.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from redis import Redis

from app.config import Settings
from jobs.queues import live_workers
from jobs.upkeep.reconciler import reconcile
from tests.utils.api import result, submitted
from tests.utils.audio import JFK_LINE, audio_file, long_recording, normalize
from tests.utils.hosts import Host, can_make_namespaces, forwarded, lan
from tests.utils.paths import ROOT
from tests.utils.processes import stop, uvicorn_server
from tests.utils.records import task_row
from tests.utils.s3 import S3Endpoint, moto_server, object_keys, run_bucket
from tests.utils.waiting import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not can_make_namespaces(), reason="needs root and `ip netns`"),
]

AUDIO_SUFFIXES = {".flac", ".wav", ".mp3", ".ogg", ".webm", ".m4a", ".part"}


def with_host(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced (same scheme, credentials, path)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return parts._replace(netloc=f"{credentials}{host}:{port}").geturl()


def recordings_on_disk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in AUDIO_SUFFIXES]


@pytest.fixture
def cluster(settings: Settings, redis: Redis, tmp_path: Path) -> Iterator[dict]:
    """The three hosts, running: yields the API's URL, the hosts, their disks and the bucket."""
    with ExitStack() as stack:
        network = stack.enter_context(lan(["gpu1", "gpu2"]))
        api_address = network.gateway
        ports = stack.enter_context(forwarded(api_address, {
            "database": urlsplit(settings.DATABASE_URL).port or 5432,
            "redis": urlsplit(settings.REDIS_URL).port or 6379,
        }))  # fmt: skip
        bucket: S3Endpoint = stack.enter_context(
            run_bucket(stack.enter_context(moto_server(host=api_address)))
        )
        disks = {name: tmp_path / name for name in ("api", "gpu1", "gpu2")}
        common = {
            **bucket.env("recordings/"),
            "DATABASE_URL": with_host(settings.DATABASE_URL, api_address, ports["database"]),
            "REDIS_URL": with_host(settings.REDIS_URL, api_address, ports["redis"]),
        }
        url = stack.enter_context(uvicorn_server(
            tmp_path / "web.log", host=api_address, **common, STORAGE_PATH=str(disks["api"])
        ))  # fmt: skip
        workers = {}
        for name, host in network.hosts.items():
            log = stack.enter_context((tmp_path / f"{name}.log").open("w"))
            workers[name] = subprocess.Popen(
                host.command(sys.executable, "-m", "jobs.worker", "--name", f"{name}.tiny"),
                cwd=ROOT, env={**os.environ, **common, "STORAGE_PATH": str(disks[name])},
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            stack.callback(stop, workers[name])
        wait_for(lambda: len(live_workers(redis)) == 2, timeout=90, message="both workers")
        yield {"url": url, "hosts": network.hosts, "disks": disks, "bucket": bucket,
               "workers": workers}  # fmt: skip


def test_workers_on_other_hosts_transcribe_from_the_bucket_and_survive_a_lost_host(
    cluster: dict, settings: Settings, tmp_path: Path
):
    url, hosts, disks = cluster["url"], cluster["hosts"], cluster["disks"]

    first = submitted(url, audio_file("jfk.flac"))
    wait_for(lambda: result(url, first)["status"] == "done", timeout=120, message="jfk done")
    assert JFK_LINE in normalize(result(url, first)["text"])
    assert task_row(settings, first).worker_name in ("gpu1.tiny", "gpu2.tiny")

    long_id = submitted(url, long_recording(tmp_path / "long.wav", repeats=4))
    wait_for(lambda: task_row(settings, long_id).status == "processing", timeout=60,
             message="the long task running")  # fmt: skip
    lost = task_row(settings, long_id).worker_name.split(".")[0]
    survivor = "gpu2" if lost == "gpu1" else "gpu1"
    lost_host: Host = hosts[lost]
    for pid in lost_host.pids():  # the host is gone: every process on it, at once
        subprocess.run(["kill", f"-{signal.SIGKILL.value}", str(pid)], check=False)

    def recovered() -> bool:
        reconcile()  # what the api host's cron does every RECONCILE_INTERVAL_SECONDS
        time.sleep(1)
        return task_row(settings, long_id).status == "done"

    wait_for(recovered, timeout=180, message="the other host to finish it")
    row = task_row(settings, long_id)
    assert row.worker_name == f"{survivor}.tiny" and row.attempts == 2
    assert len((row.text or "").split()) > 100

    keys = object_keys(cluster["bucket"], "recordings/")
    assert sorted(k.rsplit("_", 1)[-1] for k in keys) == sorted([f"{first}.flac",
                                                                f"{long_id}.wav"])  # fmt: skip
    for name, disk in disks.items():
        assert recordings_on_disk(disk) == [], f"a recording on {name}'s disk"
