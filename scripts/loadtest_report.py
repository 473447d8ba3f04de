"""The Markdown report of scripts/loadtest.py: summary, latency, errors, queue depth."""

import argparse
import math
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scripts.loadtest import Run

LATENCIES = ("submit", "poll", "submit → done", "queue wait (server)", "processing (server)")
PERCENTILES = (50, 90, 99)


def render(run: "Run", args: argparse.Namespace, clip: str, started: datetime, command: str) -> str:
    submitters = args.clients if args.mode == "short" else args.submitters
    pollers = f"; {args.clients - submitters} only poll those tasks" if args.mode == "long" else ""
    return "\n".join([
        f"# Load test: {args.mode} mode, {args.clients} clients, {args.duration:g} s",
        "",
        f"`{command}`",
        "",
        f"Against {args.server}, started {started:%Y-%m-%d %H:%M:%S} UTC. {submitters} "
        f"client(s) submit `{clip}` and poll it every ~{args.poll:g} s until it ends, then "
        f"submit again{pollers}. After {args.duration:g} s no task is submitted; tasks not "
        f"ended {args.drain:g} s later are canceled.",
        "",
        summary(run, args),
        errors(run),
        queue_depth(run),
    ])  # fmt: skip


def summary(run: "Run", args: argparse.Namespace) -> str:
    """The part also printed to the terminal."""
    minutes, ended = run.wall / 60, sum(v for k, v in run.errors.items() if k.startswith("task "))
    rows = [
        ("wall time (s)", f"{run.wall:.1f}"),
        ("tasks submitted", run.submitted),
        ("tasks completed", run.completed),
        ("tasks failed or canceled", ended),
        ("tasks unfinished, canceled at the end", len(run.unfinished)),
        ("errors", sum(run.errors.values())),
        ("429 answers waited out", sum(run.throttled.values())),
        ("throughput (tasks completed per minute)", f"{run.completed / minutes:.1f}"),
        ("audio seconds transcribed per wall second", f"{run.audio_seconds / run.wall:.2f}"),
    ]
    lines = ["## Summary", "", "| measure | value |", "|---|--:|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += ["", "## Latency (seconds)", "", "| request | count | p50 | p90 | p99 | max |",
              "|---|--:|--:|--:|--:|--:|"]  # fmt: skip
    for name in LATENCIES:
        values = sorted(run.latency.get(name, []))
        cells = [percentile(values, p) for p in PERCENTILES] + [values[-1] if values else None]
        lines.append(f"| {name} | {len(values)} | " + " | ".join(map(_seconds, cells)) + " |")
    return "\n".join([*lines, ""])


def errors(run: "Run") -> str:
    lines = ["## Errors", ""]
    if not run.errors:
        return "\n".join([*lines, "None.", ""])
    lines += ["| kind | count |", "|---|--:|"]
    lines += [f"| {kind} | {count} |" for kind, count in run.errors.most_common()]
    return "\n".join([*lines, ""])


def queue_depth(run: "Run") -> str:
    lines = ["## Queue depth over time", ""]
    if run.queue_note:
        return "\n".join([*lines, run.queue_note, ""])
    lines += ["| t (s) | queued | processing | workers | busy | estimated wait (s) |",
              "|--:|--:|--:|--:|--:|--:|"]  # fmt: skip
    for at, status in run.queue:
        if status is None:
            lines.append(f"| {at:.0f} | error | | | | |")
            continue
        cells = [status[k] for k in ("queued", "processing", "workers", "workers_busy")]
        wait = status.get("estimated_wait")
        lines.append(f"| {at:.0f} | " + " | ".join(map(str, cells)) + f" | {_seconds(wait)} |")
    return "\n".join([*lines, ""])


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"
