"""Load-test a running service over HTTP (it starts nothing):

    uv run --all-extras python scripts/loadtest.py -c 500 -d 60s --mode short \\
        --server http://127.0.0.1:8000 [--api-key KEY] [--report loadtest-report.md]

`short`: every client submits a short clip (../shared/audio/jfk.flac, or --file) and polls it
until it ends, again and again. `long`: a few clients submit a several-minute WAV built from
the shared clips while all the others poll those tasks. A 429 is waited out as its
Retry-After says. After the duration no new task is submitted; tasks still running get
--drain to finish, then are canceled. Writes a Markdown report and prints its summary.
"""

import argparse
import asyncio
import io
import os
import random
import re
import shlex
import sys
import time
import wave
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.loadtest_report import render, summary  # noqa: E402

AUDIO = Path(os.environ.get("SHARED_AUDIO_PATH", ROOT.parent / "shared" / "audio"))
SHORT_CLIP = "jfk.flac"
LONG_SOURCES = ("jfk.flac", "hotwords.mp3", "multilingual.mp3", "stereo_diarization.wav")
TERMINAL = {"done", "failed", "canceled"}
SAMPLE_RATE = 16000


class Fatal(Exception):
    """Going on would measure nothing: the service is unreachable or refuses the key."""


@dataclass
class Clip:
    name: str
    data: bytes


@dataclass
class Run:
    """Everything measured. All clients share one event loop, so no locks."""

    started: float = field(default_factory=time.monotonic)
    wall: float = 0.0
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)
    submitted: int = 0
    completed: int = 0
    audio_seconds: float = 0.0
    unfinished: set[str] = field(default_factory=set)
    queue: list[tuple[float, dict[str, Any] | None]] = field(default_factory=list)
    queue_note: str | None = None

    def record_done(self, task: dict[str, Any], seconds: float) -> None:
        self.completed += 1
        self.audio_seconds += task.get("duration") or 0.0
        self.latency["submit → done"].append(seconds)
        timings = task.get("timings") or {}
        for name, key in (("queue wait (server)", "queue_seconds"),
                          ("processing (server)", "processing_seconds")):  # fmt: skip
            if timings.get(key) is not None:
                self.latency[name].append(timings[key])


class Client:
    """One HTTP connection pool for every simulated client; records latency and errors."""

    def __init__(self, http: httpx.AsyncClient, run: Run) -> None:
        self.http, self.run = http, run

    async def call(
        self, kind: str, method: str, path: str, until: float, **kw: Any
    ) -> dict[str, Any] | None:
        """The JSON answer, or None after an error (counted). Waits out 429s until `until`."""
        while True:
            started = time.perf_counter()
            try:
                response = await self.http.request(method, path, **kw)
            except httpx.HTTPError as exc:
                self.run.errors[f"{kind}: {type(exc).__name__}"] += 1
                return None
            if response.status_code == 429:
                self.run.throttled[kind] += 1
                pause = retry_after(response)
                if time.monotonic() + pause > until:  # not before the end: wait that out
                    await asyncio.sleep(max(0.0, until - time.monotonic()))
                    return None
                await asyncio.sleep(pause)
                continue
            if response.status_code in (401, 403):
                raise Fatal(f"the service refused the API key for {method} {path} "
                            f"({response.status_code}: {detail(response)})")  # fmt: skip
            if response.is_error:
                self.run.errors[f"{kind}: HTTP {response.status_code}"] += 1
                return None
            if (body := json_object(response)) is None:
                self.run.errors[f"{kind}: not a JSON object"] += 1
                return None
            self.run.latency[kind].append(time.perf_counter() - started)
            return body


def retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:  # an HTTP date: rare enough to wait a fixed second
        return 1.0


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def detail(response: httpx.Response) -> str:
    body = json_object(response) or {}
    return str(body.get("detail") or body.get("error") or response.reason_phrase)


def jittered(seconds: float) -> float:
    """Spread the clients out so they do not poll in lockstep."""
    return seconds * random.uniform(0.8, 1.2)


async def follow(client: Client, task_id: str, since: float, until: float, poll: float) -> None:
    """Poll a task until it ends (recorded) or `until` passes (left in run.unfinished)."""
    run = client.run
    run.unfinished.add(task_id)
    while time.monotonic() < until:
        await asyncio.sleep(jittered(poll))
        task = await client.call("poll", "GET", f"/api/v1/asr/result/{task_id}", until)
        if task is None or task["status"] not in TERMINAL:
            continue
        run.unfinished.discard(task_id)
        if task["status"] == "done":
            run.record_done(task, time.monotonic() - since)
        else:
            run.errors[f"task {task['status']}: {(task.get('error') or '-')[:80]}"] += 1
        return


async def submitter(
    client: Client, clip: Clip, stop_at: float, drain_until: float, poll: float,
    active: list[str],
) -> None:  # fmt: skip
    """Submit the clip, follow it to the end, repeat until the duration is over."""
    while time.monotonic() < stop_at:
        since = time.monotonic()
        files = {"audio": (clip.name, clip.data)}
        body = await client.call("submit", "POST", "/api/v1/asr/submit", stop_at, files=files)
        if body is None:  # after an error, do not spin
            await asyncio.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))
            continue
        client.run.submitted += 1
        active.append(body["task_id"])
        await follow(client, body["task_id"], since, drain_until, poll)
        active.remove(body["task_id"])


async def poller(client: Client, active: list[str], stop_at: float, poll: float) -> None:
    """Poll whichever task is running, as a crowd of waiting clients would."""
    while time.monotonic() < stop_at:
        await asyncio.sleep(jittered(poll))
        if active:
            await client.call("poll", "GET", f"/api/v1/asr/result/{random.choice(active)}",
                              stop_at)  # fmt: skip


async def sample_queue(client: Client, every: float) -> None:
    while await take_sample(client):
        await asyncio.sleep(every)


async def take_sample(client: Client) -> bool:
    """One queue-depth sample; False when the key may not read the queue (admin only)."""
    run = client.run
    try:
        status = await client.call("queue", "GET", "/api/v1/asr/queue/status", 0)
    except Fatal:
        run.queue_note = "Not sampled: the queue status needs an API key with `admin` scope."
        return False
    run.queue.append((time.monotonic() - run.started, status))
    return True


async def preflight(http: httpx.AsyncClient) -> str | None:
    """Fail fast, in a sentence, when nothing answers or the key is refused; a warning when
    the service says it is not ready."""
    try:
        health = await http.get("/health")
        history = await http.get("/api/v1/asr/history", params={"limit": 1})
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise Fatal(f"cannot reach the service at {http.base_url} ({reason})") from None
    if health.status_code not in (200, 503) or "status" not in health.text:
        raise Fatal(f"{http.base_url}/health answered {health.status_code}: not this service?")
    if history.status_code in (401, 403):
        raise Fatal(f"the service refused the API key ({history.status_code}: "
                    f"{detail(history)}); pass --api-key or set ASR_KEY")  # fmt: skip
    if health.status_code == 503:
        reasons = (json_object(health) or {}).get("reasons", [])
        return f"the service is not ready: {'; '.join(reasons)}"
    return None


async def load(args: argparse.Namespace, clip: Clip, run: Run) -> None:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=args.server, headers=headers, limits=limits,
                                 timeout=args.timeout) as http:  # fmt: skip
        if warning := await preflight(http):
            print(f"loadtest: warning: {warning}", file=sys.stderr)
        print(f"loadtest: {args.mode} mode, {args.clients} clients, {args.duration:g} s against "
              f"{args.server} ({clip.name}, {len(clip.data) / 1e6:.1f} MB)")  # fmt: skip
        client = Client(http, run)
        run.started = time.monotonic()
        stop_at = run.started + args.duration
        drain_until = stop_at + args.drain
        submitters = args.clients if args.mode == "short" else args.submitters
        active: list[str] = []
        sampler = asyncio.create_task(sample_queue(client, args.sample_every))
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(submitters):
                    group.create_task(submitter(client, clip, stop_at, drain_until, args.poll,
                                                active))  # fmt: skip
                for _ in range(args.clients - submitters):
                    group.create_task(poller(client, active, stop_at, args.poll))
        except* Fatal as fatal:
            raise fatal.exceptions[0] from None  # one sentence, not a group's traceback
        finally:
            sampler.cancel()
        run.wall = time.monotonic() - run.started
        if run.queue_note is None:
            await take_sample(client)
        await cancel(client, sorted(run.unfinished))


async def cancel(client: Client, task_ids: list[str]) -> None:
    """Tasks still running at the end leave the queue, so they do not skew the next run."""
    await asyncio.gather(*(client.http.post(f"/api/v1/asr/cancel/{task_id}")
                           for task_id in task_ids), return_exceptions=True)  # fmt: skip


def duration(text: str) -> float:
    """`60s`, `2m`, `1h` or plain seconds (`90`)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 60s, 2m or 90")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def short_clip(path: Path | None) -> Clip:
    path = path or AUDIO / SHORT_CLIP
    return Clip(path.name, path.read_bytes())


def long_clip(seconds: float) -> Clip:
    """A mono 16 kHz WAV of the shared clips one after another, repeated to `seconds`."""
    pieces = [decode(AUDIO / name) for name in LONG_SOURCES]
    pcm, target = bytearray(), int(seconds * SAMPLE_RATE) * 2
    while len(pcm) < target:
        for piece in pieces:
            pcm += piece
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(pcm[:target]))
    return Clip(f"loadtest-{round(seconds)}s.wav", out.getvalue())


def decode(path: Path) -> bytes:
    """16-bit mono 16 kHz samples of any file PyAV reads."""
    import av  # only the long mode decodes

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    with av.open(str(path)) as container:
        frames = [out for frame in container.decode(audio=0) for out in resampler.resample(frame)]
    frames += resampler.resample(None)
    return b"".join(frame.to_ndarray().tobytes() for frame in frames)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Load-test a running transcription service.")
    add = parser.add_argument
    add("-c", "--clients", type=int, default=50, help="concurrent clients (default 50)")
    add("-d", "--duration", type=duration, default=60.0, help="60s (default), 2m, 90, ...")
    add("--mode", choices=("short", "long"), default="short", help="see the top of this file")
    add("--server", default="http://127.0.0.1:8000", help="the service's base URL")
    add("--api-key", default=os.environ.get("ASR_KEY"), help="submit+read (admin: also the "
        "queue depth); default $ASR_KEY")  # fmt: skip
    add("--report", type=Path, default=Path("loadtest-report.md"), help="Markdown report path")
    add("--file", type=Path, help="submit this recording instead of the shared clip(s)")
    add("--submitters", type=int, help="long mode: clients that submit (default clients/100)")
    add("--long-seconds", type=duration, default=300.0, help="long mode: length of the WAV")
    add("--poll", type=float, default=1.0, help="seconds between polls (default 1)")
    add("--drain", type=duration, default=30.0, help="time for running tasks to end (30s)")
    add("--sample-every", type=float, default=5.0, help="seconds between queue samples (5)")
    add("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    args = parser.parse_args(argv)
    if args.clients < 1:
        parser.error("-c must be at least 1")
    if args.submitters is None:
        args.submitters = max(1, args.clients // 100)
    args.submitters = min(args.submitters, args.clients)
    args.server = args.server.rstrip("/")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.mode == "short" or args.file:
            clip = short_clip(args.file)
        else:
            clip = long_clip(args.long_seconds)
    except (OSError, ValueError) as exc:  # PyAV's decoding errors are ValueErrors
        print(f"loadtest: error: cannot read the audio: {exc} (set SHARED_AUDIO_PATH or "
              "pass --file)", file=sys.stderr)  # fmt: skip
        return 1
    run = Run()
    started_at = datetime.now(UTC)
    try:
        asyncio.run(load(args, clip, run))
    except Fatal as exc:
        print(f"loadtest: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("loadtest: interrupted; no report written", file=sys.stderr)
        return 130
    args.report.write_text(
        render(run, args, clip.name, started_at, f"python {shlex.join(sys.argv)}")
    )
    print(summary(run, args))
    print(f"loadtest: report written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
