"""Settings for every process (API, worker, scripts), read from the environment or `.env`.

This module imports nothing from the project so that `jobs/`, `storage/` and `scripts/`
can use it without loading the web stack.
"""

import logging
import re
import sys
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import ByteSize, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_QUEUE_NAME = "transcription"
TELEGRAM_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")

WhisperDevice = Literal["auto", "cpu", "cuda"]
# "auto" picks float16 on CUDA and int8 on CPU; the rest are CTranslate2's own names.
WhisperComputeType = Literal[
    "auto", "default", "int8", "int8_float16", "int8_float32", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
]  # fmt: skip
LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """One place for every knob; `.env.example` lists them in the same order."""

    # env_ignore_empty: `NAME=` in .env means "use the default", as .env.example shows.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        embedded = EmbeddedServers(settings_cls)
        return init_settings, env_settings, dotenv_settings, embedded, file_secret_settings

    DATABASE_URL: str = "postgresql+psycopg://postgres@127.0.0.1:5432/asr"
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    # Root for recordings/, logs/ and models/ (see the properties below).
    STORAGE_PATH: Path = Path("data")
    # Where recordings live. local: STORAGE_PATH/recordings, one host (or a shared mount).
    # s3: a bucket, so the API and workers can run on hosts that share nothing but the
    # network. Credentials come the way AWS tools read them: AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's role.
    STORAGE_BACKEND: Literal["local", "s3"] = "local"
    S3_BUCKET: str = ""
    # Prepended to every key, e.g. `asr/recordings/`; lets one bucket serve several services.
    S3_PREFIX: str = ""
    # Empty: AWS itself. Anything speaking S3: MinIO, Ceph, R2, GCS interop, moto.
    S3_ENDPOINT_URL: str = ""
    # Empty: from AWS_REGION / the profile, else us-east-1.
    S3_REGION: str = ""
    # auto: path-style with S3_ENDPOINT_URL (what MinIO and Ceph expect), else virtual-hosted.
    S3_ADDRESSING_STYLE: Literal["auto", "path", "virtual"] = "auto"
    # true: GET /asr/audio/{id} answers a 307 to a short-lived presigned URL, so the bytes
    # come from the bucket rather than through the API.
    S3_PRESIGN: bool = False
    S3_PRESIGN_SECONDS: int = Field(default=300, ge=10, le=7 * 24 * 3600)

    # "tiny.en" (bundled, no download), "base" (after scripts/install_model.py base),
    # a path to a CTranslate2 model directory, or a faster-whisper size such as "large-v3".
    WHISPER_MODEL: str = "tiny.en"
    # Every model the service offers, comma-separated (e.g. `tiny.en,base`); a task picks one
    # with `model`, WHISPER_MODEL when it names none. Each model has its own queue, served by
    # workers started with `--model NAME` (or WORKER_MODEL). Empty: WHISPER_MODEL alone.
    WHISPER_MODELS: str = ""
    # The model this worker process loads; empty: WHISPER_MODEL.
    WORKER_MODEL: str = ""
    WHISPER_DEVICE: WhisperDevice = "auto"
    WHISPER_COMPUTE_TYPE: WhisperComputeType = "auto"
    # 0 lets CTranslate2 choose (4 threads, or OMP_NUM_THREADS when set).
    WHISPER_CPU_THREADS: int = Field(default=0, ge=0)
    # Where scripts/install_model.py puts models; defaults to STORAGE_PATH/models.
    WHISPER_MODELS_PATH: Path | None = None
    WHISPER_DEFAULT_BEAM_SIZE: int = Field(default=5, ge=1, le=20)
    # Longer recordings are decoded and transcribed in pieces of about this many seconds,
    # cut at a quiet moment: worker memory stays flat however long the file.
    AUDIO_PIECE_SECONDS: int = Field(default=600, ge=60)
    # true: a task whose decoding falls back to sampling (temperature > 0) samples from a seed
    # taken from its id, on a copy of the model loaded for it
    # (jobs/transcription/seeding.py), so a retry gives the same text. The copy costs the
    # model's load time and memory once more, for those tasks only (0.2 s for tiny.en; for
    # large-v3 on a small GPU, consider false).
    SEEDED_SAMPLING: bool = True
    # > 0: decode a recording's 30-s windows in batches of this size (faster-whisper's
    # BatchedInferencePipeline). 0, sequential decoding, is the default: on the benchmark it
    # kept accuracy that batching lost (docs/PERFORMANCE.md).
    WHISPER_BATCH_SIZE: int = Field(default=0, ge=0, le=64)
    # Recordings at most this long (as measured at submit) wait in their model's short lane,
    # which every worker takes from first: a voice note never waits behind long files still
    # queued. 0: no lane.
    SHORT_MAX_SECONDS: float = Field(default=30, ge=0)
    # all: this worker takes short recordings first, then the rest; short: only short ones
    # (what `python -m jobs.worker --lane short` sets), kept free for voice notes.
    WORKER_LANE: Literal["all", "short"] = "all"
    # Cross-job batching: a worker that takes a short task (<= 30 s, default-ish options) also
    # claims up to this many queued short tasks in all and transcribes them as one batch
    # (jobs/transcription/batching.py). 1 turns it off.
    BATCH_MAX_JOBS: int = Field(default=8, ge=1, le=64)
    # Pack clips shorter than half a window several to a 30-s window (fewer encoder passes;
    # each clip is checked and re-decoded alone when the check fails). Off by default: on
    # the benchmark it was no faster on CPU than a batch of windows, and drifted more.
    BATCH_PACKING: bool = False

    MAX_UPLOAD_MB: int = Field(default=500, ge=1)
    # The OpenAI-compatible routes wait this long for the transcript, then answer 202 with
    # the task id (a reverse proxy in front needs a longer read timeout).
    OPENAI_WAIT_SECONDS: float = Field(default=300, ge=0, le=3600)
    # Hard limit for one transcription; checked between segments as well as by RQ.
    JOB_TIMEOUT_SECONDS: int = Field(default=3600, ge=10)
    QUEUE_NAME: str = DEFAULT_QUEUE_NAME
    # RQ keeps finished/failed job records this long; Postgres keeps the transcript.
    JOB_RESULT_TTL_SECONDS: int = Field(default=3600, ge=0)
    JOB_FAILURE_TTL_SECONDS: int = Field(default=7 * 24 * 3600, ge=0)
    # A worker counts as alive while its heartbeat key (refreshed every third of this) exists.
    WORKER_HEARTBEAT_TTL_SECONDS: int = Field(default=30, ge=3)
    # A lapsed heartbeat only makes a worker suspect (a starved process misses beats too).
    # One on another machine, whose process the reconciler cannot look at, counts as dead
    # once it has missed this many beats (of TTL/3 s each; the key expires after 3).
    WORKER_LOST_AFTER_MISSED_BEATS: int = Field(default=10, ge=3)
    # A task whose worker died while processing it is run again up to this many times in all.
    MAX_ATTEMPTS: int = Field(default=3, ge=1)
    # The reconciler (worker start, and every RECONCILE_INTERVAL_SECONDS) leaves tasks younger
    # than RECONCILE_GRACE_SECONDS alone: they may be between commit and enqueue.
    RECONCILE_INTERVAL_SECONDS: int = Field(default=60, ge=5)
    RECONCILE_GRACE_SECONDS: int = Field(default=30, ge=0)
    # On SIGTERM a worker finishes its task if it can within this, else puts the task back.
    WORKER_SHUTDOWN_GRACE_SECONDS: int = Field(default=25, ge=0)
    # true: submit answers 503 while no worker is alive. false: it accepts the task and says
    # so in a `warning`; the task waits for a worker.
    REJECT_WHEN_NO_WORKERS: bool = False
    # true: a submit whose audio (sha256), options and model equal a `done` task of the same
    # caller gets that task back at once (200, `Deduplicated: true`); nothing is queued.
    DEDUPE: bool = False

    # Retention, applied by the sweeper (jobs/upkeep/sweeper.py) every SWEEP_INTERVAL_SECONDS. Only
    # recordings of ended tasks are removed; their transcripts stay unless TRANSCRIPT_MAX_AGE.
    # Keep at most this many recordings; 0 = no limit.
    MAX_RECORDINGS: int = Field(default=10, ge=0)
    # Remove recordings older than this ("30d", "12h", "P30D"); empty = no age limit.
    RECORDING_MAX_AGE: timedelta | None = None
    # Keep all recordings together under this size ("5GB", "500MiB"); 0 = no limit.
    RECORDINGS_MAX_BYTES: ByteSize = ByteSize(0)
    # Delete whole tasks (row, transcript, recording) older than this; empty = keep forever.
    TRANSCRIPT_MAX_AGE: timedelta | None = None
    SWEEP_INTERVAL_SECONDS: int = Field(default=600, ge=10)

    # rq-dashboard (at /rq and the Procfile `dashboard` process) is served only when both are set.
    RQ_DASHBOARD_USERNAME: str = ""
    RQ_DASHBOARD_PASSWORD: SecretStr = SecretStr("")
    # The standalone dashboard process listens here; keep it on an internal interface.
    RQ_DASHBOARD_BIND: str = "127.0.0.1"
    RQ_DASHBOARD_PORT: int = Field(default=9181, ge=1, le=65535)

    # API keys (scripts/apikey.py). On by default: a server reachable from elsewhere is never
    # open by accident; scripts/serve creates and prints an admin key on its first start.
    AUTH_ENABLED: bool = True
    # Per key: submits per minute, and tasks queued or processing at once (429 beyond).
    SUBMIT_RATE_PER_MINUTE: int = Field(default=60, ge=1)
    MAX_ACTIVE_TASKS_PER_KEY: int = Field(default=100, ge=1)
    # Longest recording accepted, checked when the upload is probed (413); 0 = no limit.
    MAX_AUDIO_SECONDS: int = Field(default=4 * 3600, ge=0)
    # Origins allowed to call the API from a browser ("https://a.example,https://b.example").
    CORS_ORIGINS: Annotated[list[str], NoDecode] = []

    @field_validator("CORS_ORIGINS", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    # Webhooks (a task's `callback_url`, signed with its `callback_secret` or this one). A
    # submit with a callback_url but no secret, and no WEBHOOK_SECRET, is refused.
    WEBHOOK_SECRET: SecretStr | None = None
    # true: callbacks may go to loopback/private/link-local addresses (tests, a trusted LAN).
    WEBHOOK_ALLOW_PRIVATE: bool = False
    # Seconds to wait before each retry of a delivery that did not get a 2xx; one more
    # attempt than delays (default: 10 attempts over about an hour).
    WEBHOOK_RETRY_DELAYS: str = "10,30,60,120,300,600,900,900,900"
    # The server's public URL ("https://asr.example.com") for links in webhook bodies;
    # empty: the links are paths ("/asr/result/<id>").
    PUBLIC_BASE_URL: str | None = None

    @field_validator("WEBHOOK_RETRY_DELAYS")
    @classmethod
    def check_retry_delays(cls, value: str) -> str:
        try:
            delays = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise ValueError("must be comma-separated whole seconds, e.g. 10,30,60") from None
        if any(delay < 0 for delay in delays):
            raise ValueError("delays must not be negative")
        return value

    # The built-in Telegram bot (POST /telegram/webhook, scripts/telegram_polling.py): on
    # when a token from @BotFather is set. The secret is the one given to setWebhook, which
    # Telegram sends back in X-Telegram-Bot-Api-Secret-Token; required with a token.
    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    TELEGRAM_WEBHOOK_SECRET: SecretStr | None = None
    # A self-hosted Bot API server (github.com/tdlib/telegram-bot-api) lifts the cloud
    # API's 20 MB download limit; raise TELEGRAM_MAX_FILE_MB with it.
    TELEGRAM_API_BASE: str = "https://api.telegram.org"
    TELEGRAM_MAX_FILE_MB: int = Field(default=20, ge=1, le=2000)
    # Chat ids allowed to use the bot ("123,-100456"); empty: anyone who finds it.
    TELEGRAM_ALLOWED_CHATS: Annotated[list[int], NoDecode] = []
    # Recordings one chat may have queued or processing at once (the bot's tasks have no API
    # key, so this stands in for the per-key limit); more are answered "wait".
    TELEGRAM_MAX_ACTIVE_PER_CHAT: int = Field(default=5, ge=1)

    @field_validator("TELEGRAM_ALLOWED_CHATS", mode="before")
    @classmethod
    def split_chat_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("TELEGRAM_WEBHOOK_SECRET")
    @classmethod
    def check_telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not TELEGRAM_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - (try `openssl rand "
                "-hex 32`)"
            )
        return value

    @model_validator(mode="after")
    def telegram_needs_a_secret(self) -> "Settings":
        if self.TELEGRAM_BOT_TOKEN is not None and self.TELEGRAM_WEBHOOK_SECRET is None:
            raise ValueError(
                "TELEGRAM_BOT_TOKEN is set but TELEGRAM_WEBHOOK_SECRET is not: without it "
                "anyone could post fake updates to /telegram/webhook (generate one with "
                "`openssl rand -hex 32`)"
            )
        return self

    @model_validator(mode="after")
    def s3_needs_a_bucket(self) -> "Settings":
        if self.STORAGE_BACKEND == "s3" and not self.S3_BUCKET:
            raise ValueError("STORAGE_BACKEND=s3 needs S3_BUCKET (the bucket's name)")
        return self

    LOG_LEVEL: LogLevel = "INFO"
    LOG_ROTATION: str = "50 MB"
    LOG_RETENTION: str = "14 days"

    PORT: int = Field(default=8000, ge=1, le=65535)

    @property
    def recordings_path(self) -> Path:
        return self.STORAGE_PATH / "recordings"

    @property
    def logs_path(self) -> Path:
        return self.STORAGE_PATH / "logs"

    @property
    def models_path(self) -> Path:
        return self.WHISPER_MODELS_PATH or self.STORAGE_PATH / "models"

    @property
    def offered_models(self) -> list[str]:
        """WHISPER_MODEL first, then the rest of WHISPER_MODELS."""
        names = [self.WHISPER_MODEL, *(m.strip() for m in self.WHISPER_MODELS.split(","))]
        return list(dict.fromkeys(name for name in names if name))

    @property
    def worker_model(self) -> str:
        return self.WORKER_MODEL or self.WHISPER_MODEL

    @property
    def webhook_retry_delays(self) -> list[int]:
        return [int(part) for part in self.WEBHOOK_RETRY_DELAYS.split(",") if part.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return self.MAX_UPLOAD_MB * 1024 * 1024

    @property
    def telegram_max_file_bytes(self) -> int:
        return min(self.TELEGRAM_MAX_FILE_MB * 1024 * 1024, self.max_upload_bytes)


# Written by scripts/serve under STORAGE_PATH while it runs embedded servers.
EMBEDDED_SERVICES_FILE = Path("embedded") / "services.env"


class EmbeddedServers(PydanticBaseSettingsSource):
    """DATABASE_URL and REDIS_URL of the embedded servers scripts/serve runs for this
    STORAGE_PATH, from STORAGE_PATH/embedded/services.env: scripts run beside it (apikey.py,
    sweep.py, another worker) find them without being told. The environment and .env win."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False  # __call__ reads the file whole

    def __call__(self) -> dict[str, object]:
        default = Settings.model_fields["STORAGE_PATH"].default
        storage = Path(self.current_state.get("STORAGE_PATH") or default)
        try:
            lines = (storage / EMBEDDED_SERVICES_FILE).read_text().splitlines()
        except OSError:
            return {}
        found = dict(line.split("=", 1) for line in lines if "=" in line)
        return {name: found[name] for name in ("DATABASE_URL", "REDIS_URL") if found.get(name)}


@lru_cache
def get_settings() -> Settings:
    return Settings()


def configure_logging(settings: Settings, log_name: str, capture_stdlib: bool = False) -> None:
    """Send loguru output to stderr, `<logs>/<log_name>.log` and the shared `<logs>/error.log`.

    Lives here because both the API and the worker call it and `jobs/` may import only this
    module from `app/`.
    """
    from loguru import logger

    settings.logs_path.mkdir(parents=True, exist_ok=True)
    logger.remove()
    logger.add(sys.stderr, level=settings.LOG_LEVEL)
    logger.add(
        settings.logs_path / f"{log_name}.log",
        level=settings.LOG_LEVEL,
        filter=lambda record: "access" not in record["extra"],
        rotation=settings.LOG_ROTATION,
        retention=settings.LOG_RETENTION,
    )
    logger.add(
        settings.logs_path / "error.log",
        level="ERROR",
        rotation=settings.LOG_ROTATION,
        retention=settings.LOG_RETENTION,
    )
    if capture_stdlib:
        # RQ logs (job failures with tracebacks) through the standard library.
        logging.basicConfig(handlers=[_ToLoguru()], level=0, force=True)
    if log_name == "api":
        # Access lines (bound with access=True by the API middleware) get a file of their own.
        logger.add(
            settings.logs_path / "access.log",
            format="{time:YYYY-MM-DD HH:mm:ss.SSS} {message}",
            filter=lambda record: "access" in record["extra"],
            rotation=settings.LOG_ROTATION,
            retention=settings.LOG_RETENTION,
        )


class _ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        from loguru import logger

        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).log(level, "{}: {}", record.name, record.getMessage())
