"""Run Procfile processes as `honcho start` does, but stop them as ours need:
`python scripts/processes.py [--grace SECONDS] web worker …` (scripts/serve.py runs it).

honcho stops with SIGTERM to each process's group and, 5 s later, SIGKILL to those groups every
0.1 s, a line each time, until every process's output has closed. An RQ worker that forked a
job (the maintenance and delivery workers) waits for the job after SIGTERM, and the job runs
in a process group of its own, which neither signal reaches: the worker is killed at 5 s and
the job, still holding the output open, brings dozens of SIGKILL lines. Here each process
gets `--grace` seconds after SIGTERM to finish what it is doing (a transcription worker
finishes or puts back its task within WORKER_SHUTDOWN_GRACE_SECONDS); whatever is still
running then, a forked job included, is killed once, in one line.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from honcho import environ
from honcho.manager import Manager
from honcho.printer import Printer

DEFAULT_GRACE_SECONDS = 30


def process_groups_under(pids: Iterable[int]) -> set[int]:
    """The process groups of `pids` and of all their descendants, from /proc."""
    parents: dict[int, list[int]] = defaultdict(list)
    group_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # after the command's ")": state, parent pid, process group
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        parents[int(fields[1])].append(int(entry.name))
        group_of[int(entry.name)] = int(fields[2])
    groups, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid in group_of:
            groups.add(group_of[pid])
        todo.extend(parents.pop(pid, []))
    return groups


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_groups(groups: Iterable[int]) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


class Processes(Manager):
    """honcho's manager with one stop: SIGTERM, `grace_seconds`, then SIGKILL for what is left."""

    def __init__(self, grace_seconds: float, printer: Printer) -> None:
        super().__init__(printer)
        self.grace_seconds = grace_seconds
        self._deadline: threading.Timer | None = None
        self._groups: set[int] = set()

    def terminate(self) -> None:
        if self._deadline is None:
            # Taken now: a shell that SIGTERM ends leaves its children to init, out of reach
            # of a walk from the pids we know.
            self._groups = process_groups_under(p["pid"] for p in self._processes.values())
            self._deadline = threading.Timer(self.grace_seconds, self.kill_leftovers)
            self._deadline.daemon = True
            self._deadline.start()
        super().terminate()

    def kill(self) -> None:
        """honcho's loop calls this from 5 s after the first process stopped: too early."""

    def kill_leftovers(self) -> None:
        running = {n: p["pid"] for n, p in self._processes.items() if "returncode" not in p}
        groups = {g for g in self._groups | process_groups_under(running.values()) if alive(g)}
        if running and groups:
            self._system_print(
                f"still running {self.grace_seconds:g} s after SIGTERM, killed: "
                f"{', '.join(running)}\n"
            )
            kill_groups(groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grace", type=float, default=DEFAULT_GRACE_SECONDS,
                        help="seconds a process has to stop after SIGTERM")  # fmt: skip
    parser.add_argument("--procfile", type=Path, default=Path("Procfile"))
    parser.add_argument("processes", nargs="+", help="Procfile process types to run")
    args = parser.parse_args(argv)
    procfile = environ.parse_procfile(args.procfile.read_text())
    missing = [name for name in args.processes if name not in procfile.processes]
    if missing:
        parser.error(f"not in {args.procfile}: {', '.join(missing)}")
    manager = Processes(args.grace, Printer(sys.stdout))
    chosen = {name: procfile.processes[name] for name in args.processes}
    # As honcho: .env's variables for every process (the environment wins here, as it does in
    # app/config.py), one PORT for the first process type and +100 for each further one.
    dotenv = Path(".env")
    base = {**environ.parse(dotenv.read_text() if dotenv.exists() else ""), **os.environ}
    port = int(base.get("PORT", "5000"))
    for process in environ.expand_processes(chosen, port=port):
        manager.add_process(process.name, process.cmd, env={**base, **process.env})
    manager.loop()
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
