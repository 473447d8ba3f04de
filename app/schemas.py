"""Request and response bodies of the task API."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Form
from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

# Whisper's languages (faster_whisper.tokenizer._LANGUAGE_CODES), copied so the API process
# need not import faster-whisper; tests/app/test_schemas.py keeps the two lists equal.
# fmt: off
LANGUAGE_CODES = frozenset(
    {
        "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
        "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
        "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
        "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
        "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
        "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
        "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
    }
)
# fmt: on
MAX_BEAM_SIZE = 20


def normalize_language(value: str | None) -> str | None:
    """`auto`, empty or absent mean detection; otherwise one of Whisper's language codes."""
    if value is None or value.strip().lower() in ("", "auto"):
        return None
    code = value.strip().lower()
    if code not in LANGUAGE_CODES:
        raise ValueError(
            f"unknown language {value!r}; use `auto` or one of: "
            + ", ".join(sorted(LANGUAGE_CODES))
        )
    return code


def blank_to_none(value: str | None) -> str | None:
    """Blank means absent; control characters (NUL above all) are refused, not stored."""
    if value is None or not value.strip():
        return None
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def null_as_none(value: Any) -> Any:
    """`null` in a nullable form field means absent: multipart has no null, so generated
    clients and a browser's FormData send None as the text `null`."""
    return None if isinstance(value, str) and value.strip() == "null" else value


# On each nullable form field, after its Form(...) (whose limits then apply to the text, not
# to None), so that `null` is unset there as the schema says.
NullAsNone = BeforeValidator(null_as_none)
Language = Annotated[str | None, AfterValidator(normalize_language)]
# The length limit on the text itself, before blank_to_none: a limit outside the union would
# be checked on the None a blank value becomes, and raise.
Hotwords = Annotated[
    Annotated[str, StringConstraints(max_length=1000)] | None, AfterValidator(blank_to_none)
]
InitialPrompt = Annotated[
    Annotated[str, StringConstraints(max_length=2000)] | None, AfterValidator(blank_to_none)
]

LANGUAGE_DOC = "Spoken language as an ISO 639-1 code (`en`, `de`, ...); empty or `auto` detects it."
TASK_DOC = "`translate` produces English text from any language."
WORD_TIMESTAMPS_DOC = "Add per-word timings to the segments."
HOTWORDS_DOC = "Words or names the model should favour (at most 1000 characters)."
INITIAL_PROMPT_DOC = "Text that sets style and vocabulary (at most 2000 characters)."
VAD_FILTER_DOC = "Skip silence with Silero VAD before transcribing."
TEMPERATURE_DOC = (
    "Sampling temperature, 0-1, used alone; absent: faster-whisper's fallback from 0.0 up."
)
BEAM_SIZE_DOC = "Beam width, 1-20; the server default (WHISPER_DEFAULT_BEAM_SIZE) if absent."
VAD_THRESHOLD_DOC = "With vad_filter: speech probability threshold, 0-1 (default 0.5)."
VAD_MIN_SPEECH_DOC = "With vad_filter: shorter speech is dropped, 0-10000 ms (default 0)."
VAD_MIN_SILENCE_DOC = "With vad_filter: silence that splits speech, 0-10000 ms (default 2000)."
VAD_SPEECH_PAD_DOC = "With vad_filter: kept around each speech chunk, 0-5000 ms (default 400)."
VAD_FIELDS = ("vad_threshold", "vad_min_speech_ms", "vad_min_silence_ms", "vad_speech_pad_ms")


class TaskOptions(BaseModel):
    """Transcription options of a task, as submitted."""

    language: Language = Field(default=None, description=LANGUAGE_DOC)
    task: Literal["transcribe", "translate"] = Field(default="transcribe", description=TASK_DOC)
    word_timestamps: bool = Field(default=False, description=WORD_TIMESTAMPS_DOC)
    hotwords: Hotwords = Field(default=None, description=HOTWORDS_DOC)
    initial_prompt: InitialPrompt = Field(default=None, description=INITIAL_PROMPT_DOC)
    vad_filter: bool = Field(default=False, description=VAD_FILTER_DOC)
    beam_size: int | None = Field(default=None, ge=1, le=MAX_BEAM_SIZE, description=BEAM_SIZE_DOC)
    temperature: float | None = Field(default=None, ge=0, le=1, description=TEMPERATURE_DOC)
    vad_threshold: float | None = Field(default=None, gt=0, lt=1, description=VAD_THRESHOLD_DOC)
    vad_min_speech_ms: int | None = Field(
        default=None, ge=0, le=10000, description=VAD_MIN_SPEECH_DOC
    )
    vad_min_silence_ms: int | None = Field(
        default=None, ge=0, le=10000, description=VAD_MIN_SILENCE_DOC
    )
    vad_speech_pad_ms: int | None = Field(
        default=None, ge=0, le=5000, description=VAD_SPEECH_PAD_DOC
    )

    @model_validator(mode="after")
    def vad_settings_need_vad_filter(self) -> "TaskOptions":
        given = [name for name in VAD_FIELDS if getattr(self, name) is not None]
        if given and not self.vad_filter:
            raise ValueError(f"{', '.join(given)} only apply with vad_filter=true")
        return self


def task_options_form(
    language: Annotated[
        Language, Form(description=LANGUAGE_DOC, examples=["en"]), NullAsNone
    ] = None,
    task: Annotated[Literal["transcribe", "translate"], Form(description=TASK_DOC)] = "transcribe",
    word_timestamps: Annotated[bool, Form(description=WORD_TIMESTAMPS_DOC)] = False,
    hotwords: Annotated[Hotwords, Form(description=HOTWORDS_DOC), NullAsNone] = None,
    initial_prompt: Annotated[
        InitialPrompt, Form(description=INITIAL_PROMPT_DOC), NullAsNone
    ] = None,
    vad_filter: Annotated[bool, Form(description=VAD_FILTER_DOC)] = False,
    beam_size: Annotated[
        int | None, Form(ge=1, le=MAX_BEAM_SIZE, description=BEAM_SIZE_DOC), NullAsNone
    ] = None,
    temperature: Annotated[
        float | None, Form(ge=0, le=1, description=TEMPERATURE_DOC), NullAsNone
    ] = None,
    vad_threshold: Annotated[
        float | None, Form(gt=0, lt=1, description=VAD_THRESHOLD_DOC), NullAsNone
    ] = None,
    vad_min_speech_ms: Annotated[
        int | None, Form(ge=0, le=10000, description=VAD_MIN_SPEECH_DOC), NullAsNone
    ] = None,
    vad_min_silence_ms: Annotated[
        int | None, Form(ge=0, le=10000, description=VAD_MIN_SILENCE_DOC), NullAsNone
    ] = None,
    vad_speech_pad_ms: Annotated[
        int | None, Form(ge=0, le=5000, description=VAD_SPEECH_PAD_DOC), NullAsNone
    ] = None,
) -> TaskOptions:
    """The submit form's option fields, one by one so the OpenAPI page lists each of them."""
    try:
        return TaskOptions(
            language=language, task=task, word_timestamps=word_timestamps, hotwords=hotwords,
            initial_prompt=initial_prompt, vad_filter=vad_filter, beam_size=beam_size,
            temperature=temperature, vad_threshold=vad_threshold,
            vad_min_speech_ms=vad_min_speech_ms, vad_min_silence_ms=vad_min_silence_ms,
            vad_speech_pad_ms=vad_speech_pad_ms,
        )  # fmt: skip
    except ValidationError as exc:  # a rule across fields: a 422 like any other bad field
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_context=False)]
        raise RequestValidationError(errors) from None


TaskStatusName = Literal["queued", "processing", "done", "failed", "canceled"]
STATUS_DOC = "queued → processing → done | failed; canceled by a client."
TASK_ID_DOC = "The task's id (also its RQ job id)."


class TaskQueued(BaseModel):
    """Answer to a submit or retry: the task exists and waits for a worker."""

    task_id: uuid.UUID = Field(description=TASK_ID_DOC)
    status: Literal["queued"] = Field(default="queued", description="Always `queued` here.")
    position: int | None = Field(
        description="Place in the queue; 1 is the next task a worker takes."
    )
    estimated_wait: float | None = Field(
        description="Seconds until a worker starts this task, from queued audio and recent "
        "real-time factors; null while no worker is alive."
    )
    result_url: str = Field(description="Poll this for status and, once done, the transcript.")
    warning: str | None = Field(
        default=None, description="Set when no worker is alive to start the task yet."
    )


class TranscriptWord(BaseModel):
    start: float = Field(description="Seconds from the start of the recording.")
    end: float = Field(description="Seconds from the start of the recording.")
    word: str = Field(description="The word, with Whisper's leading space.")
    probability: float = Field(description="The model's confidence, 0-1.")


class TranscriptSegment(BaseModel):
    start: float = Field(description="Seconds from the start of the recording.")
    end: float = Field(description="Seconds from the start of the recording.")
    text: str = Field(description="The segment's text.")
    words: list[TranscriptWord] | None = Field(
        default=None, description="Per-word timings when `word_timestamps` was requested."
    )


class TaskTimings(BaseModel):
    created_at: datetime = Field(description="When the upload was accepted.")
    started_at: datetime | None = Field(default=None, description="When a worker started.")
    finished_at: datetime | None = Field(default=None, description="When it ended.")
    queue_seconds: float | None = Field(default=None, description="From upload to start.")
    processing_seconds: float | None = Field(default=None, description="From start to end.")
    rtf: float | None = Field(
        default=None, description="Real-time factor: processing seconds per second of audio."
    )


class WebhookState(BaseModel):
    """Delivery of the task's webhook (its secret is never shown)."""

    attempts: int = Field(description="POSTs made so far.")
    last_status: str | None = Field(
        default=None, description="The last attempt's HTTP status, or what went wrong."
    )
    delivered_at: datetime | None = Field(
        default=None, description="When a 2xx answer was received; null until then."
    )


class TaskPublic(BaseModel):
    """A task as clients see it; fields that do not apply to its status are null."""

    task_id: uuid.UUID = Field(description=TASK_ID_DOC)
    status: TaskStatusName = Field(description=STATUS_DOC)
    filename: str = Field(description="The uploaded file's name, for display.")
    model: str = Field(description="The Whisper model that transcribes (or transcribed) it.")
    options: TaskOptions = Field(description="The options it was submitted with.")
    attempts: int = Field(description="How many times a worker has started it.")
    position: int | None = Field(default=None, description="Queued only: place in the queue.")
    progress: float | None = Field(
        default=None, description="Processing: percent of the audio done, to a tenth."
    )
    text: str | None = Field(default=None, description="Done only: the whole transcript.")
    language: str | None = Field(default=None, description="Detected (or requested) language.")
    language_probability: float | None = Field(
        default=None, description="Confidence of the detected language, 0-1."
    )
    duration: float | None = Field(default=None, description="Audio length in seconds.")
    segments: list[TranscriptSegment] | None = Field(
        default=None, description="Done only: the transcript with timings."
    )
    audio_url: str | None = Field(
        default=None, description="The original recording; null once retention removed it."
    )
    timings: TaskTimings = Field(description="When it was queued, started and ended.")
    error: str | None = Field(default=None, description="Failed only: why, in words.")
    retry_url: str | None = Field(
        default=None, description="Failed or canceled: POST here to queue it again."
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="The JSON object submitted as `metadata`, as it was sent."
    )
    webhook: WebhookState | None = Field(
        default=None, description="With a `callback_url`: the webhook's delivery state."
    )


class TaskExisting(TaskPublic):
    """Answer (200) to a submit that matched an existing task: a repeated Idempotency-Key
    (header `Idempotent-Replayed: true`) or, with DEDUPE=true, a finished twin
    (`Deduplicated: true`). Its current status, whatever it is."""

    result_url: str = Field(description="Poll this for status and, once done, the transcript.")


class WorkerPublic(BaseModel):
    """A live worker, from its heartbeat."""

    name: str = Field(description="host.pid unless named with --name.")
    model: str = Field(description="The model it has loaded.")
    device: str = Field(description="cpu or cuda.")
    compute_type: str = Field(description="CTranslate2 compute type, e.g. int8 or float16.")
    state: Literal["idle", "busy"] = Field(description="busy while it runs a task.")
    current_task: str | None = Field(description="The task it is running, if any.")
    tasks: list[str] = Field(
        default_factory=list,
        description="Every task it is transcribing: with cross-job batching, several at once.",
    )
    load: float = Field(description="The worker host's 1-minute load average.")
    rss_mb: float = Field(description="The worker process's resident memory.")
    last_seen: datetime = Field(description="Its latest heartbeat.")


class HistoryRecord(BaseModel):
    task_id: uuid.UUID = Field(description=TASK_ID_DOC)
    filename: str = Field(description="The uploaded file's name.")
    status: TaskStatusName = Field(description=STATUS_DOC)
    text_preview: str | None = Field(description="The first 200 characters of the text.")
    created_at: datetime = Field(description="When the upload was accepted.")
    duration: float | None = Field(description="Audio length in seconds.")
    audio_url: str | None = Field(description="Null once retention removed the recording.")


class HistoryPage(BaseModel):
    total: int = Field(description="Tasks matching the filter, over all pages.")
    limit: int = Field(description="Page size used.")
    offset: int = Field(description="Records skipped.")
    records: list[HistoryRecord] = Field(description="Newest first.")


class QueueStatus(BaseModel):
    queued: int = Field(description="Jobs waiting in the transcription queue.")
    processing: int = Field(description="Jobs a worker has started.")
    failed: int = Field(description="Jobs in RQ's failed registry.")
    workers: int = Field(description="Live workers serving the queue.")
    workers_busy: int = Field(description="Of those, how many are running a task.")
    estimated_wait: float | None = Field(
        description="Seconds a task submitted now would wait for a worker; null without one."
    )


class RtfStats(BaseModel):
    mean: float | None = Field(description="Mean real-time factor; null before any task.")
    median: float | None = Field(description="Median real-time factor.")


class Stats(BaseModel):
    tasks: dict[str, int] = Field(description="Task count by status, plus `total`.")
    audio_hours_transcribed: float = Field(description="Audio of `done` tasks, in hours.")
    rtf: RtfStats = Field(description="Real-time factor of `done` tasks.")
    mean_queue_wait_seconds: float | None = Field(description="From upload to start.")
    uptime: float = Field(description="Seconds since this API process started.")
    workers: list[WorkerPublic] = Field(description="Live workers, from their heartbeats.")


class Health(BaseModel):
    status: Literal["ready", "unavailable"] = Field(description="ready: work gets done.")
    model: str = Field(description="The model workers load by default (WHISPER_MODEL).")
    redis: str = Field(description="`ok` or `unavailable: <reason>`.")
    database: str = Field(description="`ok` or `unavailable: <reason>`.")
    storage: str = Field(
        description="Where recordings live (`local` or `s3`), then `ok` or "
        "`unavailable: <reason>`, e.g. `s3 ok`."
    )
    workers_active: int = Field(description="Workers with a live heartbeat.")
    workers: list[WorkerPublic] = Field(description="Those workers.")
    uptime: float = Field(description="Seconds since this API process started.")
    reasons: list[str] = Field(default_factory=list, description="Why the service is not ready.")
