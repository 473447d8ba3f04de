"""Pick the S3 client library for storage/ by measurement, boto3 against obstore:

    uv run --frozen --all-extras python scripts/bench_storage.py [--size-mb 500] [--endpoint URL]

Starts a moto S3 server on a free loopback port, unless --endpoint names a real one (then
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY come from the environment). Every measurement
runs in a fresh interpreter of its own, so import cost and peak RSS are the library's alone:
import + client creation, a multipart upload streamed from bytes made on the fly, a streamed
download in 1 MB chunks checked against the upload's SHA-256, and 1 MB ranged reads from the
middle of it and of a 4 MB object. Prints a table and writes its section of docs/PERFORMANCE.md.
"""

import argparse
import functools
import hashlib
import io
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_doc import write_section  # noqa: E402

LIBRARIES = ("boto3", "obstore")
SECTION = "## Object storage client (boto3 vs obstore)"
CHOICE = """\
The service uses boto3 (storage/s3.py): throughput is a tie here, and boto3 reads credentials
the way every AWS tool does (environment, profile, instance role; obstore has no profiles
without boto3 itself), is the reference for S3's error codes, and is imported only by
processes configured with `STORAGE_BACKEND=s3`, so its 0.35 s and 20 MB more than obstore's
are paid once per long-lived process. `scripts/bench.py` keeps this section when it rewrites
the file."""
MB = 1024 * 1024
CHUNK = MB  # download chunks and ranged reads
SMALL = 4 * MB  # moto reads a whole object to answer a ranged GET: a small one shows the client
RANGE_ROUNDS = 4  # the ranged reads, split over rounds alternating the libraries
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@functools.cache
def pattern() -> memoryview:
    """1 MiB + 7 bytes of seeded noise: repeated, no two parts of the object are alike."""
    import random

    return memoryview(random.Random(0).randbytes(MB + 7))


def expected(start: int, length: int) -> bytes:
    return b"".join(pattern_pieces(start, length))


def pattern_pieces(start: int, length: int) -> list[memoryview]:
    block, pieces = pattern(), []
    while length > 0:
        offset = start % len(block)
        piece = block[offset : offset + length]
        pieces.append(piece)
        start, length = start + len(piece), length - len(piece)
    return pieces


class PatternReader(io.RawIOBase):
    """`size` bytes of the pattern made as they are read, hashed on the way; not seekable."""

    def __init__(self, size: int) -> None:
        self.size, self.position = size, 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "WriteableBuffer") -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        for piece in pattern_pieces(self.position, min(len(view), self.size - self.position)):
            view[done : done + len(piece)] = piece
            done += len(piece)
        self.sha256.update(view[:done])
        self.position += done
        return done


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def usage() -> dict[str, float]:
    """Peak RSS so far and CPU seconds used, of this process and its threads.

    The peak is VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss across exec, so a
    child's would start at the RSS of the parent that forked it (this script, boto3 loaded).
    """
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": rss_mb("VmHWM"), "cpu_seconds": own.ru_utime + own.ru_stime}


def connect(args: argparse.Namespace) -> Any:
    if args.library == "boto3":
        import boto3

        return boto3.client("s3", endpoint_url=args.endpoint, region_name=args.region)
    from obstore.store import S3Store

    return S3Store(
        args.bucket, endpoint=args.endpoint, region=args.region,
        client_options={"allow_http": args.endpoint.startswith("http://")},
    )  # fmt: skip


def phase_startup(args: argparse.Namespace) -> dict[str, Any]:
    before = rss_mb()
    started = time.perf_counter()
    connect(args)
    return {"seconds": time.perf_counter() - started, "rss_before_mb": before, "rss_mb": rss_mb()}


def phase_upload(args: argparse.Namespace) -> dict[str, Any]:
    client, reader = connect(args), PatternReader(args.size_mb * MB)
    # Same part size and concurrency for both: boto3's own defaults (8 MiB, 10 threads).
    part, threads = args.part_mb * MB, args.concurrency
    stream = io.BufferedReader(reader, buffer_size=part)
    cpu, started = usage()["cpu_seconds"], time.perf_counter()
    if args.library == "boto3":
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_chunksize=part, max_concurrency=threads)
        client.upload_fileobj(stream, args.bucket, args.key, Config=config)
    else:
        import obstore

        obstore.put(client, args.key, stream, use_multipart=True, chunk_size=part,
                    max_concurrency=threads)  # fmt: skip
    return finish(started, cpu, reader.position, reader.sha256.hexdigest())


def phase_download(args: argparse.Namespace) -> dict[str, Any]:
    client, sha256, count = connect(args), hashlib.sha256(), 0
    cpu, started = usage()["cpu_seconds"], time.perf_counter()
    if args.library == "boto3":
        chunks = client.get_object(Bucket=args.bucket, Key=args.key)["Body"].iter_chunks(CHUNK)
    else:
        import obstore

        chunks = obstore.get(client, args.key).stream(min_chunk_size=CHUNK)
    for chunk in chunks:
        sha256.update(chunk)
        count += len(chunk)
    return finish(started, cpu, count, sha256.hexdigest())


def finish(started: float, cpu: float, count: int, sha256: str) -> dict[str, Any]:
    seconds = time.perf_counter() - started
    now = usage()
    return {"seconds": seconds, "bytes": count, "sha256": sha256, "mb_per_s": count / MB / seconds,
            "peak_rss_mb": now["peak_rss_mb"], "cpu_seconds": now["cpu_seconds"] - cpu}  # fmt: skip


def phase_range(args: argparse.Namespace) -> dict[str, Any]:
    client = connect(args)
    return {
        "ms": ranged_ms(args, client, args.key, args.size_mb * MB // 2),
        "small_ms": ranged_ms(args, client, f"{args.key}-small", SMALL // 2),
    }


def ranged_ms(args: argparse.Namespace, client: Any, key: str, start: int) -> list[float]:
    """Milliseconds of each of `args.reads` reads of 1 MB at `start`, each checked."""
    latencies, want = [], expected(start, CHUNK)
    for _ in range(args.reads):
        began = time.perf_counter()
        if args.library == "boto3":
            span = f"bytes={start}-{start + CHUNK - 1}"
            got = client.get_object(Bucket=args.bucket, Key=key, Range=span)["Body"].read()
        else:
            import obstore

            got = bytes(obstore.get_range(client, key, start=start, length=CHUNK))
        latencies.append(time.perf_counter() - began)
        if got != want:
            raise SystemExit(f"{args.library}: ranged read of {key} returned the wrong bytes")
    return [1000 * latency for latency in latencies]


PHASES = {"startup": phase_startup, "upload": phase_upload, "download": phase_download,
          "range": phase_range}  # fmt: skip


class Bench:
    """Runs every step, each in a fresh `python scripts/bench_storage.py --phase ...`."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def run(self, phase: str, library: str, key: str = "", reads: int = 0) -> dict[str, Any]:
        a = self.args
        command = [sys.executable, __file__, "--phase", phase, "--library", library,
                   "--endpoint", a.endpoint, "--bucket", a.bucket, "--key", key,
                   "--region", a.region, "--size-mb", str(a.size_mb), "--part-mb", str(a.part_mb),
                   "--concurrency", str(a.concurrency), "--reads", str(reads)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=a.timeout)
        if done.returncode:
            raise SystemExit(f"{library} {phase} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"bench_storage: {library} {phase} {result}", flush=True)
        return result

    def measure(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {lib: {"startup": []} for lib in LIBRARIES}
        for _ in range(self.args.runs):  # interleaved, so a busy moment hits both alike
            for library in LIBRARIES:
                results[library]["startup"].append(self.run("startup", library))
        admin, key = admin_client(self.args), f"bench-storage/{os.getpid()}"
        for library in LIBRARIES:  # each uploads the same bytes over the one before's
            for phase in ("upload", "download"):
                results[library][phase] = self.run(phase, library, key)
            upload, download = results[library]["upload"], results[library]["download"]
            if download["bytes"] != upload["bytes"] or download["sha256"] != upload["sha256"]:
                raise SystemExit(f"{library}: the download differs from the upload")
        admin.put_object(Bucket=self.args.bucket, Key=f"{key}-small", Body=expected(0, SMALL))
        for library in LIBRARIES:
            results[library]["range"] = {"ms": [], "small_ms": []}
        for _ in range(RANGE_ROUNDS):  # interleaved too, on the same object
            for library in LIBRARIES:
                reads = self.run("range", library, key, self.args.reads // RANGE_ROUNDS)
                for name, latencies in reads.items():
                    results[library]["range"][name] += latencies
        for name in (key, f"{key}-small"):
            admin.delete_object(Bucket=self.args.bucket, Key=name)
        return results


def admin_client(args: argparse.Namespace) -> Any:
    """boto3 in this process, for the set-up the measured steps need (not measured)."""
    import boto3

    return boto3.client("s3", endpoint_url=args.endpoint, region_name=args.region)


def ensure_bucket(args: argparse.Namespace) -> None:
    import botocore.exceptions

    client = admin_client(args)
    try:
        client.head_bucket(Bucket=args.bucket)
    except botocore.exceptions.ClientError:
        client.create_bucket(Bucket=args.bucket)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("moto server did not start")


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The figures of the table, per library: medians of the start-ups, the rest as measured."""
    table = {}
    for library, r in results.items():
        startups = r["startup"]
        table[library] = {
            "startup_ms": 1000 * statistics.median(s["seconds"] for s in startups),
            "startup_rss_mb": statistics.median(s["rss_mb"] for s in startups),
            "interpreter_rss_mb": statistics.median(s["rss_before_mb"] for s in startups),
            **{f"{phase}_{name}": r[phase][name] for phase in ("upload", "download")
               for name in ("mb_per_s", "peak_rss_mb", "cpu_seconds", "seconds")},
            "range_ms": statistics.median(r["range"]["ms"]),
            "small_range_ms": statistics.median(r["range"]["small_ms"]),
        }  # fmt: skip
    return table


def render_table(table: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    reads = args.reads // RANGE_ROUNDS * RANGE_ROUNDS
    rows = [
        (f"import + client, ms (median of {args.runs} fresh interpreters)", "startup_ms", 0),
        ("RSS after import + client, MB (same runs)", "startup_rss_mb", 1),
        (f"upload {args.size_mb} MB, MB/s (higher is better)", "upload_mb_per_s", 1),
        ("upload: client peak RSS, MB", "upload_peak_rss_mb", 1),
        ("upload: client CPU seconds", "upload_cpu_seconds", 2),
        (f"download {args.size_mb} MB in 1 MB chunks, MB/s (higher is better)",
         "download_mb_per_s", 1),
        ("download: client peak RSS, MB", "download_peak_rss_mb", 1),
        ("download: client CPU seconds", "download_cpu_seconds", 2),
        (f"ranged read of 1 MB from the middle, ms (median of {reads})", "range_ms", 1),
        (f"the same from a {SMALL // MB} MB object, ms (median of {reads})",
         "small_range_ms", 1),
    ]  # fmt: skip
    lines = ["| measurement | boto3 | obstore | obstore / boto3 |", "|---|---|---|---|"]
    for label, name, digits in rows:
        boto3, obstore = table["boto3"][name], table["obstore"][name]
        lines.append(f"| {label} | {boto3:.{digits}f} | {obstore:.{digits}f} | "
                     f"{obstore / boto3:.2f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def render_section(table: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    command = "uv run --frozen --all-extras python scripts/bench_storage.py"
    command += "" if args.size_mb == 500 else f" --size-mb {args.size_mb}"
    if args.given_endpoint:
        where = f"against `{args.endpoint}` (bucket `{args.bucket}`)"
    else:
        where = (f"against moto {version('moto')}'s S3 server on loopback. Moto is a Python "
                 "server: it bounds the throughput, so the MB/s say little about a real "
                 "bucket; memory, CPU and import cost are the library's own. Moto reads a "
                 "whole object to answer a ranged GET: the ranged reads of the big object are "
                 "mostly moto's time, those of the small one show the client's")  # fmt: skip
    prose = f"""Measured with `{command}` on {datetime.now(UTC).isoformat(timespec="seconds")}:
    {os.cpu_count()} CPU cores, shared by the server, the client and anything else running on
    the machine (load average {args.load:.1f} at the start); Python
    {platform.python_version()}, boto3 {version("boto3")}, obstore {version("obstore")},
    {where}. Each step runs in a fresh interpreter of its own (the
    interpreter alone: {table["boto3"]["interpreter_rss_mb"]:.1f} MB of RSS). Uploads are
    multipart, {args.part_mb} MiB parts, {args.concurrency} at a time (`upload_fileobj` with a
    `TransferConfig`; `obstore.put` of a file object), from a non-seekable stream that makes
    the bytes as they are read and hashes them; downloads stream 1 MB chunks (`get_object`'s
    `Body.iter_chunks`; `obstore.get(...).stream`), hashed and checked against the upload's
    SHA-256; ranged reads (`get_object(Range=...)`; `obstore.get_range`; {RANGE_ROUNDS} rounds
    alternating the libraries, on the same object) are checked byte for byte. Peak RSS (VmHWM)
    and CPU seconds are the client process's, all its threads."""
    return (f"{SECTION}\n\n{textwrap.fill(' '.join(prose.split()), 92)}\n\n"
            + render_table(table, args) + f"\n{CHOICE}\n")  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=500, help="size of the object")
    parser.add_argument("--endpoint", help="a real S3 endpoint instead of a moto server")
    parser.add_argument("--bucket", default="asr-bench-storage")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--part-mb", type=int, default=8, help="multipart part size")
    parser.add_argument("--concurrency", type=int, default=10, help="parts uploaded at once")
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters for start-up")
    parser.add_argument("--reads", type=int, default=20, help="ranged reads")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds for one step")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    parser.add_argument(
        "--api-upload-mb",
        type=int,
        default=0,
        help="instead: one upload of this size through the API, local and s3",
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


API_UPLOAD_SECTION = "## A large upload through the API, local disk and bucket"


def api_upload(args: argparse.Namespace) -> str:
    """The API's memory while one WAV of `--api-upload-mb` is submitted, stored on the local
    disk and then in the bucket (the service as the Procfile runs it, scripts/bench.py)."""
    from scripts.bench import Service, big_upload

    work = Path(f"/tmp/asr-bench-upload-{os.getpid()}")
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    bucket = {"STORAGE_BACKEND": "s3", "S3_BUCKET": args.bucket, "S3_ENDPOINT_URL": args.endpoint,
              "S3_REGION": args.region, "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip
    for backend, settings in (("local", {}), ("s3", bucket)):
        service = Service(work, 8795)
        service.env.update(settings)
        service.prepare()
        service.start_web()
        try:
            upload = big_upload(service, work, args.api_upload_mb)
        finally:
            service.stop()
        print(f"bench storage: API upload to {backend}: {upload}", flush=True)
        memory = f"{upload['api_rss_before_mb']} → {upload['api_rss_peak_mb']} MB"
        rows.append(f"| {backend} | {upload['status']} | {upload['seconds']} s | {memory} |")
    command = (f"uv run --frozen --all-extras python scripts/bench_storage.py --api-upload-mb "
               f"{args.api_upload_mb}")  # fmt: skip
    intro = (f"Measured with `{command}`: one WAV of {args.api_upload_mb} MB submitted to the "
             "API (one uvicorn process) while its resident memory is sampled every 50 ms, "
             "stored on the local disk, then in a bucket (moto's S3 server on loopback, "
             "multipart in 8 MiB parts).")  # fmt: skip
    table = "| storage | answer | time | API RSS before → peak |\n|---|---|---|---|\n"
    outro = (
        "With the bucket the API holds the parts in flight and read ahead (at most eight "
        "of 8 MiB, storage/s3.py), whatever the upload's size; the local disk needs none."
    )
    return (f"{API_UPLOAD_SECTION}\n\n{textwrap.fill(intro, 92)}\n\n{table}" + "\n".join(rows)
            + f"\n\n{textwrap.fill(outro, 92)}\n")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.phase:  # one step in a fresh interpreter, started by Bench.run
        print(json.dumps(PHASES[args.phase](args)))
        return 0
    args.given_endpoint, args.load = args.endpoint is not None, os.getloadavg()[0]
    server = None
    if not args.given_endpoint:
        server, args.endpoint = start_moto()
        os.environ.update(MOTO_KEYS)
    try:
        ensure_bucket(args)
        if args.api_upload_mb:
            section = api_upload(args)
            print(section)
            write_section(args.out, API_UPLOAD_SECTION, section)
            return 0
        table = summarize(Bench(args).measure())
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    section = render_section(table, args)
    print(json.dumps(table, indent=2))
    print(section)
    write_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
