"""`scripts/bench.py --only lanes`: how long voice notes wait behind long files.

Two workers start on four long recordings (`--minutes`, 20 by default; two run, two wait),
then 20 voice notes (jfk.flac, 11 s) are submitted. Each note's wait is its `started_at`
minus its `created_at`, from the task rows. Three set-ups, each on a fresh database:
"no lane" (`SHORT_MAX_SECONDS=0`: one queue, first come first served), "lane" (the default:
workers take short recordings first), and "lane + a short-lane worker" (a third worker
started with `--lane short`). Writes its section of docs/PERFORMANCE.md.
"""

import argparse
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench import AUDIO, BENCH_DB, SR, Service, write_wav  # noqa: E402
from scripts.bench_doc import write_section  # noqa: E402

SECTION = "## Voice notes behind long files (the short lane)"
SETUPS = (  # name, the service's settings, workers for the lane alone
    ("no lane", {"SHORT_MAX_SECONDS": "0"}, 0),
    ("lane", {}, 0),
    ("lane + a short-lane worker", {}, 1),
)
NOTES, LONG_FILES, GENERAL_WORKERS = 20, 4, 2


def long_recording(work: Path, minutes: float) -> Path:
    from faster_whisper import decode_audio

    speech = np.concatenate([decode_audio(str(AUDIO / name)) for name in
                             ("jfk.flac", "stereo_diarization.wav", "hotwords.mp3")])  # fmt: skip
    repeats = int(np.ceil(minutes * 60 * SR / len(speech)))
    return write_wav(work / "long.wav", np.tile(speech, repeats)[: int(minutes * 60 * SR)])


def waits(service: Service, long_path: Path, settings: dict[str, str], lane_workers: int) -> dict:
    service.env.update(settings)
    service.prepare()
    service.start_web()
    try:
        service.start_worker(GENERAL_WORKERS)
        api = f"{service.url}/api/v1/asr"
        with httpx.Client(timeout=600) as client:
            for _ in range(LONG_FILES):
                with long_path.open("rb") as audio:
                    client.post(f"{api}/submit", files={"audio": ("long.wav", audio)})
            _until(lambda: _count(client, api, "processing") == GENERAL_WORKERS)
            if lane_workers:
                service.start_lane_worker()
            jfk = (AUDIO / "jfk.flac").read_bytes()
            notes = [client.post(f"{api}/submit", files={"audio": ("note.flac", jfk)})
                     .json()["task_id"] for _ in range(NOTES)]  # fmt: skip
            _until(lambda: all(client.get(f"{api}/result/{n}").json()["status"] == "done"
                               for n in notes), timeout=7200)  # fmt: skip
        with psycopg.connect(f"postgresql://postgres@127.0.0.1/{BENCH_DB}") as conn:
            seconds = [row[0] for row in conn.execute(
                "SELECT extract(epoch FROM started_at - created_at) FROM task "
                "WHERE id = ANY(%s)", (notes,))]  # fmt: skip
    finally:
        service.stop()
        for name in settings:
            service.env.pop(name, None)
    seconds.sort()
    return {"p50": round(statistics.median(seconds), 1),
            "p95": round(seconds[int(0.95 * len(seconds)) - 1], 1)}  # fmt: skip


def _count(client: httpx.Client, api: str, status: str) -> int:
    return int(client.get(f"{api}/history", params={"status": status, "limit": 1}).json()["total"])


def _until(condition: Any, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the bench's service is stuck")
        time.sleep(0.5)


def render(results: dict[str, dict], minutes: float, command: str) -> str:
    rows = "\n".join(f"| {name} | {r['p50']} s | {r['p95']} s |" for name, r in results.items())
    intro = (
        f"Measured with `{command}`: two `tiny.en` workers (one uvicorn, 2 cores) start on "
        f"four recordings of {minutes:g} minutes (two run, two wait); then {NOTES} voice notes "
        "(jfk.flac, 11 s) are submitted. A note's wait: from its submit to a worker starting it."
    )
    outro = (
        "Without the lane the notes wait for all four long files; with it, for the two already "
        "running (a worker is never interrupted); a worker kept for the lane (`--lane short`) "
        "takes them at once."
    )
    table = "| set-up | wait p50 | wait p95 |\n|---|---|---|\n" + rows
    return "\n\n".join([SECTION, textwrap.fill(intro, 92), table, textwrap.fill(outro, 92)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20, help="length of the long files")
    parser.add_argument("--port", type=int, default=8785)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    work = Path(f"/tmp/asr-bench-lanes-{time.time_ns()}")
    work.mkdir(parents=True)
    long_path = long_recording(work, args.minutes)
    results = {}
    for name, settings, lane_workers in SETUPS:
        service = Service(work, args.port)
        results[name] = waits(service, long_path, settings, lane_workers)
        print(f"bench lanes: {name}: {results[name]}", flush=True)
    command = "uv run --all-extras python scripts/bench.py --only lanes"
    if args.minutes != 20:
        command += f" --minutes {args.minutes:g}"
    section = render(results, args.minutes, command)
    print(section)
    write_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
