"""`scripts/bench.py --only api`: the API against what its framework can do, in one run.

Starts the service as the Procfile runs it (uvicorn, one process, the app's own access log,
AUTH_ENABLED=false, one idle worker) on the bench database, and beside it a minimal FastAPI
app doing the same database work (scripts/bench_api_baseline.py: a psycopg pool, no ORM, no
Redis, no logging) under the same uvicorn. Then, alternating service and baseline, twice
each: wrk (50 connections, 10 s) on result polling of a done and of a queued task, `/health`
against a route returning `{"ok": true}`, and the history page; submit of a 1.9 MB WAV, one
client 40 in a row and 50 clients at once; last, 500 pollers for 60 s on the service alone.
Prints the ratios and writes its section of docs/PERFORMANCE.md. `--profile` also samples
the service's web process with py-spy while wrk polls and prints the top frames.
"""

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench import BENCH_DB, Service, _wait, write_wav  # noqa: E402
from scripts.bench_doc import write_section  # noqa: E402

SECTION = "## API against a minimal FastAPI app"
ROUNDS = 2
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
# Frames worth a "total" figure: ours and the libraries a request goes through (the frames
# below uvicorn's loop and the thread pool's are in every sample and say nothing).
INTERESTING = ("(app/", "(jobs/", "(models/", "(storage/", "(sqlalchemy/", "(pydantic",
               "(loguru/", "(redis/", "(rq/", "(psycopg/", "(fastapi/", "(starlette/",
               "(anyio/", "(logging/", "(prometheus_client/")  # fmt: skip


def wrk(url: str, connections: int = 50, seconds: int = 10) -> dict[str, float]:
    """One wrk run: requests/s, p50 and p99 in ms, and errors (socket errors + non-2xx)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency",
         url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    latency = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency.get("50", 0.0),
        "p99_ms": latency.get("99", 0.0),
        "errors": errors + (int(non_2xx.group(1)) if non_2xx else 0),
    }


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNITS[unit], 2)


def compare(service_url: str, baseline_url: str) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"service": [], "baseline": []}
    for _ in range(ROUNDS):
        runs["service"].append(wrk(service_url))
        runs["baseline"].append(wrk(baseline_url))
    mean = {side: statistics.mean(r["rps"] for r in rs) for side, rs in runs.items()}
    return {**runs, "ratio": round(mean["service"] / mean["baseline"], 2)}


async def submit_latency(url: str, payload: bytes, clients: int, per_client: int) -> dict:
    latencies: list[float] = []
    errors = 0

    async def one_client(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for _ in range(per_client):
            started = time.perf_counter()
            response = await client.post(url, files={"audio": ("speech.wav", payload)})
            latencies.append(1000 * (time.perf_counter() - started))
            errors += response.status_code != 202

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        await asyncio.gather(*(one_client(client) for _ in range(clients)))
    latencies.sort()
    return {"requests": len(latencies), "errors": errors,
            "p50_ms": round(latencies[len(latencies) // 2], 1),
            "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1)}  # fmt: skip


def compare_submits(service: str, baseline: str, payload: bytes, clients: int, each: int) -> dict:
    runs: dict[str, list[dict]] = {"service": [], "baseline": []}
    for _ in range(ROUNDS):
        runs["service"].append(asyncio.run(submit_latency(service, payload, clients, each)))
        runs["baseline"].append(asyncio.run(submit_latency(baseline, payload, clients, each)))
    p50 = {side: statistics.mean(r["p50_ms"] for r in rs) for side, rs in runs.items()}
    return {**runs, "slower": round(p50["service"] / p50["baseline"], 2)}


def _p50s(result: dict[str, Any], side: str) -> str:
    return "/".join(f"{run['p50_ms']:.1f}" for run in result[side])


def profile(
    pid: int, load: Callable[[], object], seconds: int = 10
) -> dict[str, list[tuple[str, float]]]:
    """py-spy samples of the web process while `load` runs, of the thread holding the GIL
    (where the process's Python time goes): the frames with the most samples, on their own
    (self) and with what they call (total), in % of all samples."""
    raw = Path(f"/tmp/asr-bench-profile-{pid}.txt")
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(seconds),
                            "--format", "raw", "--output", str(raw), "--nonblocking", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1)
    load()
    spy.wait(timeout=60)
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        parsed = re.fullmatch(r"(.*) (\d+)", line)
        if parsed is None:
            continue
        stack, count = parsed.groups()
        # "function (path.py:line)" → "function (path.py)": a function's lines counted as one
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if any(part in frame for part in INTERESTING):
                total[frame] += int(count)

    def top(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / samples, 1)) for frame, n in counter.most_common(25)]

    return {"self": top(own), "total": top(total), "samples": samples}  # type: ignore[dict-item]


def start_baseline(port: int, work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BASELINE_DATABASE_URL": f"postgresql://postgres@127.0.0.1/{BENCH_DB}",
           "BASELINE_UPLOADS": str(work / "baseline-uploads")}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "scripts.bench_api_baseline:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--loop", "asyncio"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/hello", timeout=1).status_code == 200)
    return process


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(f"/tmp/asr-bench-api-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    speech = write_wav(work / "speech.wav", np.zeros(60 * 16000, np.float32))  # 1.9 MB
    service = Service(work, args.port)
    service.env.update(WHISPER_MODELS="tiny.en,base", LOG_LEVEL="INFO")
    service.prepare()
    service.start_web()  # with the Procfile's --no-access-log: the app logs each request
    service.start_worker()
    baseline = start_baseline(args.port + 1, work)
    base = f"http://127.0.0.1:{args.port + 1}"
    api = f"{service.url}/api/v1/asr"
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds")}
    try:
        jfk = (ROOT.parent / "shared" / "audio" / "jfk.flac").read_bytes()
        done = httpx.post(f"{api}/submit", files={"audio": ("jfk.flac", jfk)}).json()["task_id"]
        _wait(lambda: httpx.get(f"{api}/result/{done}").json()["status"] == "done")
        queued = httpx.post(f"{api}/submit", files={"audio": ("jfk.flac", jfk)},
                            data={"model": "base"}).json()["task_id"]  # fmt: skip
        pairs = {
            "result_done": (f"{api}/result/{done}", f"{base}/result/{done}"),
            "result_queued": (f"{api}/result/{queued}", f"{base}/result/{queued}"),
            "health": (f"{service.url}/health", f"{base}/hello"),
            "history": (f"{api}/history", f"{base}/history"),
        }
        for name, (ours, theirs) in pairs.items():
            if args.just and name not in args.just:
                continue
            results[name] = compare(ours, theirs)
            print(f"bench api: {name}: ratio {results[name]['ratio']}", flush=True)
        if args.profile:
            assert service.web is not None
            polls = pairs["result_done"][0]
            results["profile"] = profile(service.web.pid, lambda: wrk(polls, seconds=10))
            print_profile(results["profile"], "polling a done task")
        if not args.just or "pollers_500" in args.just:
            results["pollers_500"] = wrk(pairs["result_done"][0], 500, args.poll_seconds)
            print(f"bench api: 500 pollers: {results['pollers_500']}", flush=True)
        service.stop_worker()  # submits would pile up on it: the API alone
        payload = speech.read_bytes()
        if args.profile:
            assert service.web is not None
            results["profile_submit"] = profile(service.web.pid, lambda: asyncio.run(
                submit_latency(f"{api}/submit", payload, 1, 300)))  # fmt: skip
            print_profile(results["profile_submit"], "one client submitting")
        for name, clients, each in (("submit_1", 1, 40), ("submit_50", 50, 4)):
            if args.just and name not in args.just:
                continue
            results[name] = compare_submits(
                f"{api}/submit", f"{base}/submit", payload, clients, each
            )
            print(f"bench api: {name}: {results[name]['slower']}x slower, p50 "
                  f"{_p50s(results[name], 'service')} ms against "
                  f"{_p50s(results[name], 'baseline')} ms", flush=True)  # fmt: skip
    finally:
        baseline.terminate()
        service.stop()
    return results


def print_profile(profile: dict[str, Any], load: str) -> None:
    print(f"bench api: profile of the web process, {load}: {profile['samples']} samples")
    for kind in ("self", "total"):
        print(f"  top frames by {kind} time:")
        for frame, share in profile[kind][:15]:
            print(f"    {share:5.1f}%  {frame}")


DASH, TIMES = "\u2013", "\u00d7"  # en dash and multiplication sign, for the tables
ROWS = (  # service request, the baseline's, result key, target ratio
    ("`GET /api/v1/asr/result/{id}` of a done task",
     "`SELECT * FROM task WHERE id=…` as JSON", "result_done", "≥ 0.8"),
    ("the same of a queued task (position from Redis)", "the same query", "result_queued",
     "≥ 0.8"),
    ("`GET /health` (Redis, Postgres, storage, workers)", 'a route returning `{"ok": true}`',
     "health", "≥ 0.5"),
    ("`GET /api/v1/asr/history` (20 records and the total)", "the same two queries", "history",
     "—"),
)  # fmt: skip
SUBMITS = (("submit_1", "one client, 40 in a row"), ("submit_50", "50 clients at once, 4 each"))


def _span(values: list[float], unit: str) -> str:
    low, high = min(values), max(values)
    return (
        f"{low:,.0f}{unit}" if round(low) == round(high) else f"{low:,.0f}{DASH}{high:,.0f}{unit}"
    )


def render(results: dict[str, Any], command: str) -> str:
    lines = ["| request | the service | minimal app, same run | ratio | target |",
             "|---|---|---|---|---|"]  # fmt: skip
    for ours, theirs, key, target in ROWS:
        runs = results[key]
        cells = [f"{_span([r['rps'] for r in runs[side]], ' req/s')}, p50 "
                 f"{_span([r['p50_ms'] for r in runs[side]], ' ms')}"
                 for side in ("service", "baseline")]  # fmt: skip
        lines.append(f"| {ours} | {cells[0]} | {theirs}: {cells[1]} | {runs['ratio']} | {target} |")
    for key, label in SUBMITS:
        runs = results[key]
        ours, theirs = (_span([r["p50_ms"] for r in runs[side]], " ms")
                        for side in ("service", "baseline"))  # fmt: skip
        lines.append(
            f"| submit of a 1.9 MB WAV, {label} | p50 {ours} | stream it to a file + "
            f"one INSERT: p50 {theirs} | {runs['slower']}{TIMES} slower | ≤ 2{TIMES} |"
        )
    intro = (
        f"Measured with `{command}` on {results['date']} (2 cores shared by the servers, wrk "
        "and the idle worker): the service as the Procfile runs it (one uvicorn process, its "
        "access log on, `AUTH_ENABLED=false`, one idle `tiny.en` worker) against a minimal "
        "FastAPI app doing the same database work with a psycopg pool "
        "(`scripts/bench_api_baseline.py`), under the same uvicorn; wrk with 50 connections "
        f"for 10 s, alternating, {ROUNDS} runs each. The ratio is of the mean requests per "
        "second (for submits, of the mean p50: how many times slower)."
    )
    pollers = results["pollers_500"]
    outro = (
        f"500 pollers of a done task for {pollers.get('seconds', '')} s on one API process "
        f"(wrk `-c500`): {pollers['rps']:,.0f} req/s, p50 {pollers['p50_ms']:,.0f} ms, p99 "
        f"{pollers['p99_ms']:,.0f} ms, {pollers['errors']} errors (target: 0 errors, p99 under "
        '1 s). Where the time goes: docs/performance-notes.md ("API profile").'
    )
    return (
        "\n\n".join([SECTION, textwrap.fill(intro, 92), "\n".join(lines), textwrap.fill(outro, 92)])
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8775)
    parser.add_argument("--poll-seconds", type=int, default=60)
    parser.add_argument("--profile", action="store_true", help="py-spy the web process too")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    parser.add_argument(
        "--just",
        nargs="+",
        choices=[
            "result_done",
            "result_queued",
            "health",
            "history",
            "pollers_500",
            "submit_1",
            "submit_50",
        ],
        help="measure only these requests; print, write nothing",
    )
    args = parser.parse_args(argv)
    results = run(args)
    if args.just:
        return 0
    results["pollers_500"]["seconds"] = args.poll_seconds
    command = "uv run --all-extras python scripts/bench.py --only api"
    if args.poll_seconds != 60:
        command += f" --poll-seconds {args.poll_seconds}"
    section = render(results, command)
    print(section)
    write_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
