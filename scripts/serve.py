"""Run the whole service on this machine: `scripts/serve` (installs first) or
`python scripts/serve.py [--embedded]`.

First, PORT and RQ_DASHBOARD_PORT must be free. Redis and PostgreSQL: those named by
REDIS_URL / DATABASE_URL; when a URL is not set and nothing answers at its default, an
embedded server from PyPI (scripts/embedded.py) with its data under STORAGE_PATH/embedded/,
reused by the next start on the same port; their addresses go to
STORAGE_PATH/embedded/services.env, where every script run with that STORAGE_PATH finds them
(app/config.py). Then `alembic upgrade head`, then the Procfile's processes under honcho
(scripts/processes.py). Ctrl-C or SIGTERM stops every process it started, embedded servers
last.
"""

import argparse
import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
from psycopg import sql
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import EMBEDDED_SERVICES_FILE, Settings  # noqa: E402
from models import ApiKey, Scope  # noqa: E402
from models.api_key import create_key  # noqa: E402
from models.db import session_scope  # noqa: E402
from scripts.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from scripts.processes import kill_groups, process_groups_under  # noqa: E402

PROCESSES = ("web", "worker", "maintenance", "deliveries", "cron", "dashboard")
READY_TIMEOUT_SECONDS = 180
# The Procfile's web process listens on every interface.
WEB_BIND = "0.0.0.0"
# After SIGTERM, a worker finishes or puts back its task within WORKER_SHUTDOWN_GRACE_SECONDS;
# every process gets that and this much more before what is left is killed.
STOP_MARGIN_SECONDS = 5


class ConfiguredSettings(Settings):
    """The settings the environment and .env give, without the embedded servers' addresses
    that scripts read from STORAGE_PATH/embedded/services.env: serve decides those anew."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return init_settings, env_settings, dotenv_settings, file_secret_settings


def port_taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings) -> None:
    """Before anything starts: a taken port would stop the web or dashboard process only once
    everything else is up, and take it all down."""
    wanted = [
        ("PORT", WEB_BIND, settings.PORT),
        ("RQ_DASHBOARD_PORT", settings.RQ_DASHBOARD_BIND, settings.RQ_DASHBOARD_PORT),
    ]
    if settings.PORT == settings.RQ_DASHBOARD_PORT:
        sys.exit(f"serve: PORT and RQ_DASHBOARD_PORT are both {settings.PORT}; set one apart")
    for name, host, port in wanted:
        if port_taken(host, port):
            sys.exit(
                f"serve: {name}={port} is taken: another program listens on {host}:{port}. "
                f"Stop it, or choose a free port: {name}={port + 1} scripts/serve"
            )


def redis_answers(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=1).ping())
    except RedisError:
        return False


def postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(_server_url(url, "postgres"), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _server_url(url: str, database: str) -> str:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return plain.rsplit("/", 1)[0] + "/" + database


def ensure_database(url: str) -> None:
    """A running server may not have our database yet (a fresh install)."""
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(_server_url(url, "postgres"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"serve: created database {name}")


@contextlib.contextmanager
def services(settings: Settings, force_embedded: bool) -> Iterator[dict[str, str]]:
    """The Redis and Postgres URLs to use, starting embedded servers where needed."""
    embedded_root = settings.STORAGE_PATH.resolve() / "embedded"
    with contextlib.ExitStack() as stack:
        redis_url = settings.REDIS_URL
        if force_embedded or not _usable("REDIS_URL", redis_url, settings, redis_answers):
            server = EmbeddedRedis(embedded_root / "redis").start()
            stack.callback(_stopping, "Redis", server.stop)
            redis_url = server.url
            print(f"serve: embedded Redis on {redis_url} (data in {server.data_dir})")
        database_url = settings.DATABASE_URL
        if force_embedded or not _usable("DATABASE_URL", database_url, settings, postgres_answers):
            postgres = EmbeddedPostgres(embedded_root / "postgres").start()
            stack.callback(_stopping, "PostgreSQL", postgres.stop)
            database_url = postgres.url
            print(f"serve: embedded PostgreSQL on port {postgres.port} (data in {postgres.pgdata})")
        else:
            ensure_database(database_url)
        embedded = {"REDIS_URL": redis_url} if redis_url != settings.REDIS_URL else {}
        if database_url != settings.DATABASE_URL:
            embedded["DATABASE_URL"] = database_url
        record_embedded(settings, embedded)
        yield {"REDIS_URL": redis_url, "DATABASE_URL": database_url}


def record_embedded(settings: Settings, urls: dict[str, str]) -> None:
    """Where this STORAGE_PATH's embedded servers listen, for scripts run by hand (read by
    app/config.py's EmbeddedServers); kept after a stop, as the ports stay the same."""
    path = settings.STORAGE_PATH.resolve() / EMBEDDED_SERVICES_FILE
    if urls:
        path.write_text("".join(f"{name}={url}\n" for name, url in urls.items()))
    else:
        path.unlink(missing_ok=True)


def _usable(name: str, url: str, settings: Settings, answers) -> bool:  # type: ignore[no-untyped-def]
    if answers(url):
        return True
    if name in settings.model_fields_set:
        sys.exit(f"serve: {name}={url} is set but does not answer; fix it or unset it")
    return False


def _stopping(name: str, stop) -> None:  # type: ignore[no-untyped-def]
    print(f"serve: stopping embedded {name}")
    stop()


def dashboard_credentials(settings: Settings) -> dict[str, str]:
    """Configured credentials, or a generated password kept for the next start."""
    if settings.RQ_DASHBOARD_USERNAME and settings.RQ_DASHBOARD_PASSWORD.get_secret_value():
        return {}
    secret_file = settings.STORAGE_PATH / "embedded" / "dashboard-password"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(16))
        secret_file.chmod(0o600)
    return {"RQ_DASHBOARD_USERNAME": "admin", "RQ_DASHBOARD_PASSWORD": secret_file.read_text()}


def wait_until_ready(base_url: str, honcho: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline and honcho.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return True
        time.sleep(0.5)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedded", action="store_true",
                        help="use embedded Redis and PostgreSQL even if others answer")  # fmt: skip
    args = parser.parse_args(argv)
    settings = ConfiguredSettings()
    check_ports(settings)
    # Keyboard interrupts come to us alone (honcho runs in its own session): we stop things
    # in order. SIGTERM from a supervisor means the same. Both handlers are installed here, as
    # a process started with SIGINT ignored (a script's background job) would keep ignoring it.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # logs read live
    try:
        with services(settings, args.embedded) as urls:
            env = {**os.environ, **urls, **dashboard_credentials(settings)}
            env["PORT"] = str(settings.PORT)  # honcho would give the web process 5000
            print("serve: alembic upgrade head")
            subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT,
                           env=env, check=True)  # fmt: skip
            admin_key = first_admin_key(settings, urls["DATABASE_URL"])
            return run_processes(settings, env, admin_key, script_prefix(settings, urls))
    except KeyboardInterrupt:
        print("serve: stopped")
        return 0


def first_admin_key(settings: Settings, database_url: str) -> str | None:
    """With auth on and no key yet, an admin key to start with (shown once, stored hashed)."""
    if not settings.AUTH_ENABLED:
        return None
    with session_scope(database_url) as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return None
        _, plain = create_key(session, "first admin (scripts/serve)", list(Scope))
    return plain


def script_prefix(settings: Settings, urls: dict[str, str]) -> str:
    """What a script run by hand beside this serve needs in front of `uv run` to reach the
    same servers: STORAGE_PATH when only this process's environment sets it (the script finds
    the embedded servers through it), a URL that the environment or .env points elsewhere
    (--embedded)."""
    prefix = {}
    if "STORAGE_PATH" in os.environ:
        prefix["STORAGE_PATH"] = str(settings.STORAGE_PATH)
    for name, url in urls.items():
        if name in settings.model_fields_set and getattr(settings, name) != url:
            prefix[name] = url
    return "".join(f"{name}={shlex.quote(value)} " for name, value in prefix.items())


def run_processes(
    settings: Settings, env: dict[str, str], admin_key: str | None, prefix: str
) -> int:
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    grace = settings.WORKER_SHUTDOWN_GRACE_SECONDS + STOP_MARGIN_SECONDS
    processes = subprocess.Popen(
        [sys.executable, "scripts/processes.py", "--grace", str(grace), *PROCESSES],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        base_url = f"http://127.0.0.1:{settings.PORT}"
        if wait_until_ready(base_url, processes):
            print_banner(base_url, env, settings, admin_key, prefix)
        elif processes.poll() is None:
            print(f"serve: not ready after {READY_TIMEOUT_SECONDS} s; see {base_url}/health")
        return processes.wait()
    finally:
        stop_processes(processes, grace)


def stop_processes(processes: subprocess.Popen[bytes], grace: float) -> None:
    """SIGINT: each process gets `grace` seconds (scripts/processes.py). Asked again (a second
    Ctrl-C), or past that: kill every one."""
    if processes.poll() is not None:
        return
    groups = process_groups_under([processes.pid])  # before SIGTERM orphans some of them
    processes.send_signal(signal.SIGINT)
    try:
        processes.wait(timeout=grace + 15)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        print("serve: killing every process now")
        kill_groups(groups | process_groups_under([processes.pid]))
        processes.wait()


def print_banner(
    base_url: str, env: dict[str, str], settings: Settings, admin_key: str | None, prefix: str
) -> None:
    user, password = env.get("RQ_DASHBOARD_USERNAME"), env.get("RQ_DASHBOARD_PASSWORD")
    print(
        f"\nserve: ready (the web process listens on {WEB_BIND}:{settings.PORT}, every "
        f"interface: other hosts reach it too)\n"
        f"  web page    {base_url}/\n"
        f"  API docs    {base_url}/docs\n"
        f"  health      {base_url}/health\n"
        f"  metrics     {base_url}/metrics\n"
        f"  dashboard   {base_url}/rq/  (also http://{settings.RQ_DASHBOARD_BIND}:"
        f"{env.get('RQ_DASHBOARD_PORT', settings.RQ_DASHBOARD_PORT)}/)  user {user} "
        f"password {password}\n"
        f"  Ctrl-C stops everything\n",
        flush=True,
    )
    new_key = f"{prefix}uv run python scripts/apikey.py create NAME"
    if admin_key:
        print(
            f"serve: created the first API key, with every scope. Store it now, it is not shown "
            f"again:\n\n  {admin_key}\n\n  curl -H 'Authorization: Bearer {admin_key}' "
            f"-F audio=@talk.mp3 {base_url}/api/v1/asr/submit\n\n"
            f"More keys (in another terminal, while this runs): {new_key}\n",
            flush=True,
        )
    elif settings.AUTH_ENABLED:
        print(f"serve: API keys required; create one (while this runs) with: {new_key}")


if __name__ == "__main__":
    sys.exit(main())
