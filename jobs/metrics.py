"""Worker-side metrics kept in Redis, so any API process can export what every worker did.

Counters only grow; the API turns them into Prometheus series (app/metrics.py). Imports
nothing heavy: the API imports this module.
"""

from redis import Redis

METRICS_KEY = "asr:metrics"
RTF_BUCKETS_KEY = "asr:metrics:rtf_buckets"
# Upper bounds of the real-time-factor histogram buckets (seconds of work per second of audio).
RTF_BUCKETS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


def record_transcription(redis: Redis, audio_seconds: float, wall_seconds: float) -> None:
    """Count one finished transcription."""
    rtf = wall_seconds / audio_seconds if audio_seconds else 0.0
    bucket = next((str(b) for b in RTF_BUCKETS if rtf <= b), "+Inf")
    with redis.pipeline() as pipe:
        pipe.hincrbyfloat(METRICS_KEY, "audio_seconds", audio_seconds)
        pipe.hincrbyfloat(METRICS_KEY, "wall_seconds", wall_seconds)
        pipe.hincrby(METRICS_KEY, "transcriptions", 1)
        pipe.hincrbyfloat(METRICS_KEY, "rtf_sum", rtf)
        pipe.hincrby(RTF_BUCKETS_KEY, bucket, 1)
        pipe.execute()


def read_transcription_metrics(redis: Redis) -> tuple[dict[str, float], dict[str, int]]:
    """(totals, per-bucket counts, not cumulative) as recorded by all workers."""
    totals = {_text(k): float(v) for k, v in redis.hgetall(METRICS_KEY).items()}
    buckets = {_text(k): int(v) for k, v in redis.hgetall(RTF_BUCKETS_KEY).items()}
    return totals, buckets


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
