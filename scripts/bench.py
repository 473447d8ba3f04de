"""Benchmark the service against raw faster-whisper, in one run on one machine:

    uv run --all-extras python scripts/bench.py [--quick]

Starts its own API (uvicorn) and worker processes against a separate database (`asr_bench`)
and Redis db (13), measures, prints a table, and writes docs/PERFORMANCE.md and
docs/performance.json. Every speed figure comes with the WER of the same transcripts.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jiwer
import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from jobs.transcription import engine  # noqa: E402
from scripts import bench_batching  # noqa: E402

AUDIO = Path(os.environ.get("SHARED_AUDIO_PATH", ROOT.parent / "shared" / "audio"))
SR = 16000
BENCH_DB = "asr_bench"
BENCH_REDIS = "redis://127.0.0.1:6379/13"
# Reference texts from ../shared/audio/README.md (multilingual.mp3: its English half).
REFERENCES = {
    "jfk.flac": "And so, my fellow Americans, ask not what your country can do for you, ask "
    "what you can do for your country.",
    "multilingual_en.wav": "Permission is hereby granted, free of charge, to any person "
    "obtaining a copy of this software and associated documentation files (the Software), to "
    "deal in the Software without restriction, including without limitation the rights to "
    "use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the "
    "Software, and to permit persons to whom the Software is furnished to do so, subject to "
    "the following conditions: The above copyright notice and this permission notice shall be "
    "included in all copies or substantial portions of the Software.",
    "stereo_diarization.wav": "He could rise if he seemed to complain against the wizard who "
    "would vanish behind the curtain on the left.",
    "hotwords.mp3": None,  # no reference text: speed only
}


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis) or "_"))


@dataclass
class Results:
    machine: dict[str, Any]
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SR)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def corpus(work: Path) -> dict[str, Path]:
    from faster_whisper import decode_audio

    english = decode_audio(str(AUDIO / "multilingual.mp3"))[: SR * 30]
    return {
        "jfk.flac": AUDIO / "jfk.flac",
        "multilingual_en.wav": write_wav(work / "multilingual_en.wav", english),
        "stereo_diarization.wav": AUDIO / "stereo_diarization.wav",
        "hotwords.mp3": AUDIO / "hotwords.mp3",
    }


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Service:
    """uvicorn + worker processes on the bench database, like the Procfile runs them."""

    def __init__(self, work: Path, port: int, max_upload_mb: int = 4096) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.env = {**os.environ, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1/{BENCH_DB}",
                    "REDIS_URL": BENCH_REDIS, "STORAGE_PATH": str(work / "storage"),
                    "AUTH_ENABLED": "false", "MAX_UPLOAD_MB": str(max_upload_mb),
                    "MAX_AUDIO_SECONDS": "0", "LOG_LEVEL": "WARNING", "WHISPER_DEVICE": "auto",
                    "JOB_TIMEOUT_SECONDS": "7200"}  # fmt: skip
        self.port = port
        self.web: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def prepare(self) -> None:
        with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            c.execute(f'CREATE DATABASE "{BENCH_DB}"')
        subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT,
                       env=self.env, check=True, capture_output=True)  # fmt: skip
        import redis

        redis.Redis.from_url(BENCH_REDIS).flushdb()

    def start_web(self) -> None:
        """uvicorn with the Procfile's `web` options (its event loop, its access log), on
        127.0.0.1 and this bench's port."""
        self.web = subprocess.Popen(
            [sys.executable, "-m", *procfile_web_command(self.port)],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: httpx.get(f"{self.url}/health", timeout=1).status_code in (200, 503))

    def start_worker(self, count: int = 1, **env: str) -> None:
        """`count` worker processes with these settings; returns when /health sees them."""
        for _ in range(count):
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "jobs.worker"], cwd=ROOT, env={**self.env, **env},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        _wait(
            lambda: httpx.get(f"{self.url}/health", timeout=1).json().get("workers_active") == count
        )

    def start_lane_worker(self) -> None:
        """One more worker, for the short lane alone (`--lane short`)."""
        self.workers.append(subprocess.Popen(
            [sys.executable, "-m", "jobs.worker", "--lane", "short"], cwd=ROOT, env=self.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        expected = len(self.workers)
        _wait(lambda: httpx.get(f"{self.url}/health", timeout=1).json().get("workers_active")
              == expected)  # fmt: skip

    def stop_worker(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.wait(timeout=60)
        self.workers = []

    def stop(self) -> None:
        self.stop_worker()
        if self.web is not None:
            self.web.terminate()
            try:
                self.web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.web.kill()
                self.web.wait()


def procfile_web_command(port: int) -> list[str]:
    """The Procfile's `web` command, listening on 127.0.0.1:`port`."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines()
                if line.startswith("web:"))  # fmt: skip
    command = shlex.split(line.removeprefix("web:"))
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


def _wait(check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("service did not come up")


def raw_faster_whisper(files: dict[str, Path], repeats: int, settings: Settings) -> dict:
    """The baseline: the same model and options, called directly, one file after another."""
    model = engine.load_model(settings)
    texts: dict[str, str] = {}
    audio_seconds, started = 0.0, time.perf_counter()
    for _ in range(repeats):
        for name, path in files.items():
            segments, info = model.whisper.transcribe(str(path), beam_size=5)
            texts[name] = "".join(s.text for s in segments).strip()
            audio_seconds += info.duration
    wall = time.perf_counter() - started
    del model
    return {"wall_seconds": round(wall, 2), "audio_seconds": round(audio_seconds, 1),
            "files": repeats * len(files), "texts": texts}  # fmt: skip


def through_service(service: Service, files: dict[str, Path], repeats: int) -> dict:
    """The same files submitted over HTTP, queued, transcribed by one worker, polled."""
    ids: list[tuple[str, str]] = []
    started = time.perf_counter()
    with httpx.Client(timeout=60) as client:
        for _ in range(repeats):
            for name, path in files.items():
                with path.open("rb") as audio:
                    answer = client.post(f"{service.url}/api/v1/asr/submit",
                                         files={"audio": (name, audio)})  # fmt: skip
                ids.append((name, answer.json()["task_id"]))
        pending = {task_id: name for name, task_id in ids}
        texts, audio_seconds = {}, 0.0
        while pending:
            for task_id in list(pending):
                body = client.get(f"{service.url}/api/v1/asr/result/{task_id}").json()
                if body["status"] in ("done", "failed"):
                    texts[pending.pop(task_id)] = body["text"] or ""
                    audio_seconds += body["duration"] or 0
            time.sleep(0.05)
    wall = time.perf_counter() - started
    return {"wall_seconds": round(wall, 2), "audio_seconds": round(audio_seconds, 1),
            "files": len(ids), "texts": texts}  # fmt: skip


def wer_table(texts: dict[str, str]) -> dict[str, float]:
    return {name: round(wer(ref, texts[name]), 4)
            for name, ref in REFERENCES.items() if ref and name in texts}  # fmt: skip


async def submit_latency(service: Service, one_mb: Path, clients: int, per_client: int) -> dict:
    from scripts.bench_api import submit_latency as timed_submits

    url = f"{service.url}/api/v1/asr/submit"
    return {"clients": clients,
            **await timed_submits(url, one_mb.read_bytes(), clients, per_client)}  # fmt: skip


async def pollers(service: Service, task_id: str, clients: int, seconds: float) -> dict:
    url = f"{service.url}/api/v1/asr/result/{task_id}"
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = await client.get(url)
                errors += response.status_code != 200
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as c:
        await asyncio.gather(*(loop(c) for _ in range(clients)))
    latencies.sort()
    return {"clients": clients, "seconds": seconds, "requests": len(latencies),
            "errors": errors, "requests_per_second": round(len(latencies) / seconds, 1),
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1], 1)}  # fmt: skip


def big_upload(service: Service, work: Path, size_mb: int) -> dict:
    """A WAV of `size_mb` MB (sparse zeros) uploaded while the API's RSS is sampled."""
    path = work / "big.wav"
    data_bytes = size_mb * 1024 * 1024 - 44
    with path.open("wb") as out:
        out.write(b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVEfmt "
                  + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
                  + (1).to_bytes(2, "little") + SR.to_bytes(4, "little")
                  + (SR * 2).to_bytes(4, "little") + (2).to_bytes(2, "little")
                  + (16).to_bytes(2, "little") + b"data" + data_bytes.to_bytes(4, "little"))  # fmt: skip
        out.truncate(44 + data_bytes)
    assert service.web is not None
    pid = service.web.pid
    baseline, peak = rss_mb(pid), rss_mb(pid)
    started = time.perf_counter()
    with path.open("rb") as audio, httpx.Client(timeout=600) as client:
        import threading

        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_mb(pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        response = client.post(f"{service.url}/api/v1/asr/submit",
                               files={"audio": ("big.wav", audio)})  # fmt: skip
        stop.set()
        sampler.join()
    path.unlink()
    return {"size_mb": size_mb, "status": response.status_code,
            "seconds": round(time.perf_counter() - started, 1),
            "api_rss_before_mb": round(baseline, 1), "api_rss_peak_mb": round(peak, 1),
            "api_rss_growth_mb": round(peak - baseline, 1),
            "task_id": response.json().get("task_id")}  # fmt: skip


def long_file(
    service: Service, files: dict[str, Path], work: Path, minutes: int, batch_size: int = 0
) -> dict:
    """Real clips with known texts, concatenated to `minutes`; watched while it runs."""
    from faster_whisper import decode_audio

    pieces, reference = [], []
    names = [n for n, ref in REFERENCES.items() if ref]
    gap = np.zeros(SR, np.float32)
    total, i = 0, 0
    while total < minutes * 60 * SR:
        name = names[i % len(names)]
        samples = decode_audio(str(files[name]))
        pieces += [samples, gap]
        reference.append(REFERENCES[name] or "")
        total += len(samples) + len(gap)
        i += 1
    path = write_wav(work / "long.wav", np.concatenate(pieces))
    del pieces
    service.stop_worker()  # a fresh worker, so its peak memory is this file's
    service.start_worker(WHISPER_BATCH_SIZE=str(batch_size))
    assert len(service.workers) == 1
    worker_pid = service.workers[0].pid
    worker_idle_mb = rss_mb(worker_pid)
    with path.open("rb") as audio, httpx.Client(timeout=600) as client:
        task_id = client.post(f"{service.url}/api/v1/asr/submit",
                              files={"audio": ("long.wav", audio)}).json()["task_id"]  # fmt: skip
        last_progress, last_change, longest_gap, peak = -1, None, 0.0, worker_idle_mb
        while True:
            body = client.get(f"{service.url}/api/v1/asr/result/{task_id}").json()
            now = time.monotonic()
            peak = max(peak, rss_mb(worker_pid))
            if body["status"] == "processing" and body["progress"] != last_progress:
                if last_change is not None:
                    longest_gap = max(longest_gap, now - last_change)
                last_progress, last_change = body["progress"], now
            if body["status"] in ("done", "failed"):
                break
            time.sleep(0.25)
    path.unlink()
    return {"batch_size": batch_size, "audio_minutes": round(total / SR / 60, 1), "status": body["status"],
            "wall_seconds": body["timings"]["processing_seconds"], "rtf": body["timings"]["rtf"],
            "worker_rss_idle_mb": round(worker_idle_mb, 1), "worker_rss_peak_mb": round(peak, 1),
            "longest_progress_gap_seconds": round(longest_gap, 1),
            "wer": round(wer(" ".join(reference), body["text"] or ""), 4)}  # fmt: skip


def machine(settings: Settings) -> dict[str, Any]:
    device, compute_type = engine.resolve_device(settings)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "model": settings.WHISPER_MODEL, "device": device, "compute_type": compute_type}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    parser.add_argument("--repeats", type=int, default=None, help="times the corpus is sent")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument(
        "--only",
        choices=["batching", "long", "api", "lanes"],
        help="measure only this part; the rest is kept from performance.json",
    )
    parser.add_argument("--clips", type=int, default=None, help="short clips for batching")
    parser.add_argument("--profile", action="store_true", help="--only api: py-spy the API too")
    parser.add_argument("--minutes", type=float, default=20, help="--only lanes: long files")
    args = parser.parse_args(argv)
    if args.only == "api":  # scripts/bench_api.py: its own section of PERFORMANCE.md
        from scripts import bench_api

        return bench_api.main(["--poll-seconds", "10" if args.quick else "60",
                               *(["--profile"] if args.profile else [])])  # fmt: skip
    if args.only == "lanes":  # scripts/bench_lanes.py: its own section of PERFORMANCE.md
        from scripts import bench_lanes

        return bench_lanes.main(["--minutes", str(args.minutes)])
    repeats = args.repeats or (2 if args.quick else 5)
    long_minutes, poll_seconds, big_mb = (10, 10, 512) if args.quick else (60, 60, 2048)

    work = Path(f"/tmp/asr-bench-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(WHISPER_DEVICE="auto")
    results = Results(machine(settings))
    files = corpus(work)
    print(f"bench: {results.machine}")

    clip_count = args.clips or (40 if args.quick else 100)
    if args.only == "batching":
        return only_batching(args, work, settings, results, clip_count)
    if args.only == "long":
        return only_long(args, work, files, results, long_minutes)
    raw = raw_faster_whisper(files, repeats, settings)
    service = Service(work, args.port)
    service.prepare()
    service.start_web()
    service.start_worker()
    try:
        served = through_service(service, files, repeats)
        results.sections["overhead"] = {
            "raw_wall_seconds": raw["wall_seconds"], "service_wall_seconds": served["wall_seconds"],
            "files": served["files"], "audio_seconds": served["audio_seconds"],
            "throughput_ratio": round(raw["wall_seconds"] / served["wall_seconds"], 3),
            "raw_wer": wer_table(raw["texts"]), "service_wer": wer_table(served["texts"]),
        }  # fmt: skip
        print("bench: overhead", results.sections["overhead"])
        service.stop_worker()  # submits pile up in the queue: measure the API alone
        one_mb = write_wav(work / "1mb.wav", np.zeros((1024 * 1024 - 44) // 2, np.float32))
        results.sections["submit"] = asyncio.run(submit_latency(service, one_mb, 50, 4))
        print("bench: submit", results.sections["submit"])
        done = httpx.get(f"{service.url}/api/v1/asr/history?limit=1&status=done").json()
        task_id = done["records"][0]["task_id"]
        results.sections["poll"] = asyncio.run(pollers(service, task_id, 50, 10))
        print("bench: poll", results.sections["poll"])
        results.sections["big_upload"] = big_upload(service, work, big_mb)
        print("bench: big upload", results.sections["big_upload"])
        import redis

        redis.Redis.from_url(BENCH_REDIS).flushdb()  # drop the piled-up jobs
        results.sections["long_file"] = long_file(service, files, work, long_minutes)
        print("bench: long file", results.sections["long_file"])
        results.sections["long_file_batched"] = long_file(service, files, work, long_minutes, 8)
        print("bench: long file, batched", results.sections["long_file_batched"])
        results.sections["batching"] = batching_section(service, work, settings, clip_count)
        # Last: past a few hundred concurrent clients the API has stalled in earlier runs.
        results.sections["pollers_500"] = asyncio.run(pollers(service, task_id, 500, poll_seconds))
        print("bench: 500 pollers", results.sections["pollers_500"])
    finally:
        service.stop()
    command = "uv run --all-extras python scripts/bench.py" + (" --quick" if args.quick else "")
    write_results(args.out, results, command)
    return 0


def write_results(out: Path, results: Results, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "performance.json").write_text(json.dumps(
        {"command": command, "machine": results.machine, **results.sections}, indent=2))  # fmt: skip
    notes = out / "performance-notes.md"  # written by hand, kept across runs
    rendered = render(results, command)
    kept = sections_of_other_benchmarks(out / "PERFORMANCE.md", rendered, notes)
    text = rendered + kept + ("\n" + notes.read_text() if notes.exists() else "")
    (out / "PERFORMANCE.md").write_text(text)
    print(text)


def sections_of_other_benchmarks(document: Path, rendered: str, notes: Path) -> str:
    """The `## ` sections other scripts wrote (scripts/bench_storage.py), kept as they are."""
    if not document.exists():
        return ""
    ours = {line for line in rendered.splitlines() if line.startswith("## ")}
    if notes.exists():
        ours |= {line for line in notes.read_text().splitlines() if line.startswith("## ")}
    kept = []
    for part in document.read_text().split("\n## ")[1:]:
        heading = "## " + part.splitlines()[0]
        if heading not in ours:
            kept.append(f"\n{heading}{part[len(heading) - 3 :].rstrip()}\n")
    return "".join(kept)


def batching_section(service: Service, work: Path, settings: Settings, count: int) -> dict:
    clips = bench_batching.build_clips(AUDIO, REFERENCES, count)
    section = bench_batching.in_process(clips, settings, normalize)
    print("bench: batching in process", section)
    section["service"] = bench_batching.through_service(service, clips, work, write_wav)
    print("bench: batching through the service", section["service"])
    return section


def only_batching(
    args: argparse.Namespace, work: Path, settings: Settings, results: Results, count: int
) -> int:
    """Measure batching again; keep the other sections (and their command) from the JSON."""
    saved = json.loads((args.out / "performance.json").read_text())
    command = saved.pop("command")
    results.machine = saved.pop("machine")
    results.sections = saved
    service = Service(work, args.port)
    service.prepare()
    service.start_web()
    try:
        results.sections["batching"] = batching_section(service, work, settings, count)
    finally:
        service.stop()
    results.sections["batching"]["command"] = (
        f"uv run --all-extras python scripts/bench.py --only batching --clips {count}"
    )
    write_results(args.out, results, command)
    return 0


def only_long(
    args: argparse.Namespace, work: Path, files: dict[str, Path], results: Results, minutes: int
) -> int:
    """Measure the long file again, sequential and batched; keep the other sections."""
    saved = json.loads((args.out / "performance.json").read_text())
    command = saved.pop("command")
    saved.pop("machine")
    results.sections = saved
    service = Service(work, args.port)
    service.prepare()
    service.start_web()
    try:
        for name, batch_size in (("long_file", 0), ("long_file_batched", 8)):
            results.sections[name] = long_file(service, files, work, minutes, batch_size)
            results.sections[name]["command"] = "uv run --all-extras python scripts/bench.py " + (
                "--only long" + (" --quick" if args.quick else "")
            )
            print(f"bench: {name}", results.sections[name])
    finally:
        service.stop()
    write_results(args.out, results, command)
    return 0


def render(results: Results, command: str) -> str:
    m, s = results.machine, results.sections
    batched = s["long_file_batched"]
    o, sub, poll, p500, big, long = (s["overhead"], s["submit"], s["poll"], s["pollers_500"],
                                     s["big_upload"], s["long_file"])  # fmt: skip
    wer_rows = "\n".join(
        f"| {name} | {o['raw_wer'][name]:.3f} | {o['service_wer'].get(name, float('nan')):.3f} |"
        for name in o["raw_wer"]
    )
    return f"""# Performance

Measured with `{command}` on {m["date"]}: {m["cpus"]} CPUs, model `{m["model"]}` on
{m["device"]} ({m["compute_type"]}), Python {m["python"]}. Every speed figure is measured
against raw faster-whisper in the same run; raw numbers are in `docs/performance.json`.

## Service overhead

{o["files"]} files ({o["audio_seconds"]} s of audio; the shared clips, repeated) through
API + queue + one worker, against the same files through `WhisperModel.transcribe` directly
with the same model and options (beam 5, language detected).

| | wall seconds |
|---|---|
| raw faster-whisper | {o["raw_wall_seconds"]} |
| the service | {o["service_wall_seconds"]} |
| **throughput ratio** (raw / service; target ≥ 0.95) | **{o["throughput_ratio"]}** |

WER against the reference texts (lower is better):

| file | raw | service |
|---|---|---|
{wer_rows}

## API

| measurement | result |
|---|---|
| submit latency, {sub["clients"]} concurrent clients uploading 1 MB ({sub["requests"]} uploads) | p50 {sub["p50_ms"]} ms, p99 {sub["p99_ms"]} ms, {sub["errors"]} errors |
| result polling, {poll["clients"]} clients, one API process | {poll["requests_per_second"]} req/s, p99 {poll["p99_ms"]} ms, {poll["errors"]} errors |
| {p500["clients"]} concurrent pollers for {p500["seconds"]:.0f} s | {p500["requests"]} requests, {p500["requests_per_second"]} req/s, p99 {p500["p99_ms"]} ms, **{p500["errors"]} errors** |
| a {big["size_mb"]} MB upload (status {big["status"]}, {big["seconds"]} s) | API RSS {big["api_rss_before_mb"]} → {big["api_rss_peak_mb"]} MB: **+{big["api_rss_growth_mb"]} MB** (target < 50 MB: streamed) |

## Cross-job batching of short clips

{batching_intro(s.get("batching"))}{bench_batching.render(s.get("batching"))}
## A long file

{long["audio_minutes"]} minutes built by concatenating the shared clips that have reference
texts, through the service{long_command(long)}:

| measurement | sequential (`WHISPER_BATCH_SIZE=0`, the default) | batched (`WHISPER_BATCH_SIZE=8`) |
|---|---|---|
| status | {long["status"]} | {batched["status"]} |
| wall seconds / real-time factor | {long["wall_seconds"]} / {long["rtf"]} | {batched["wall_seconds"]} / {batched["rtf"]} |
| worker RSS idle → peak | {long["worker_rss_idle_mb"]} → {long["worker_rss_peak_mb"]} MB | {batched["worker_rss_idle_mb"]} → {batched["worker_rss_peak_mb"]} MB |
| longest gap between progress updates (target ≤ 10 s) | {long["longest_progress_gap_seconds"]} s | {batched["longest_progress_gap_seconds"]} s |
| WER | {long["wer"]} | {batched["wer"]} |

Memory: decoded audio costs 16,000 samples × 4 bytes = 64 kB per second, 230 MB per hour,
and faster-whisper's features for it several times that while they are computed. The worker
therefore decodes and transcribes long files in pieces of `AUDIO_PIECE_SECONDS` (600 s, cut
at the quietest moment near the boundary, each next piece prompted with the last words of
the one before; the next piece is decoded while the current one is transcribed): its memory
is bounded by two pieces (~80 MB of samples) whatever the length of the file.
"""


def long_command(section: dict) -> str:
    """Where the long-file rows were measured again on their own, the command that did."""
    return f" (measured again with `{section['command']}`)" if "command" in section else ""


def batching_intro(section: dict | None) -> str:
    if section and "command" in section:
        return f"Measured again on its own with `{section['command']}`.\n\n"
    return ""


if __name__ == "__main__":
    sys.exit(main())
