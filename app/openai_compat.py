"""OpenAI's audio API, as data: its response bodies built from our stored transcript, its
model list, the names it uses for languages. Routes: app/routes/openai_api.py; errors:
app/openai_errors.py."""

import uuid
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

# OpenAI's only transcription model name that Whisper clients send; it means our default.
OPENAI_WHISPER_MODEL = "whisper-1"
# The `created` of every listed model: ours have no meaningful date.
MODEL_CREATED = 0

OpenAIResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TimestampGranularity = Literal["word", "segment"]

# Whisper's language names (openai-whisper's tokenizer.LANGUAGES), which OpenAI's
# verbose_json reports; tests/app/test_openai_compat.py keeps the codes equal to ours.
# fmt: off
LANGUAGE_NAMES = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian",
    "mk": "macedonian", "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian",
    "ne": "nepali", "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian",
    "sw": "swahili", "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala",
    "km": "khmer", "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans",
    "oc": "occitan", "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi",
    "gu": "gujarati", "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek",
    "fo": "faroese", "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk",
    "mt": "maltese", "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan",
    "tl": "tagalog", "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian",
    "ln": "lingala", "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese",
    "yue": "cantonese",
}
# fmt: on


class OpenAIModel(BaseModel):
    id: str = Field(description="The name to send as `model`.")
    object: Literal["model"] = Field(default="model", description="Always `model`.")
    created: int = Field(default=MODEL_CREATED, description="Unix time; 0 for every model here.")
    owned_by: str = Field(description="Who serves it.")


class OpenAIModelList(BaseModel):
    object: Literal["list"] = Field(default="list", description="Always `list`.")
    data: list[OpenAIModel] = Field(description="`whisper-1` (the default model) and each model.")


def resolve_model(requested: str, default: str, served: Sequence[str]) -> str | None:
    """The model a request names: `whisper-1` is the server's default; None if not served."""
    if requested == OPENAI_WHISPER_MODEL:
        return default
    return requested if requested in served else None


def model_list(served: Sequence[str], owner: str) -> OpenAIModelList:
    names = [OPENAI_WHISPER_MODEL, *(name for name in served if name != OPENAI_WHISPER_MODEL)]
    return OpenAIModelList(data=[OpenAIModel(id=name, owned_by=owner) for name in names])


class OpenAITranscription(BaseModel):
    """`response_format=json` (the default)."""

    text: str = Field(description="The whole transcript.")


class OpenAIWord(BaseModel):
    word: str = Field(description="The word, without Whisper's leading space.")
    start: float = Field(description="Seconds from the start of the recording.")
    end: float = Field(description="Seconds from the start of the recording.")


class OpenAISegment(BaseModel):
    id: int = Field(description="Position in the transcript, from 0.")
    seek: int = Field(description="Where decoding started, in 10-ms frames.")
    start: float = Field(description="Seconds from the start of the recording.")
    end: float = Field(description="Seconds from the start of the recording.")
    text: str = Field(description="The segment's text.")
    tokens: list[int] = Field(description="Token ids; empty: not kept by this server.")
    temperature: float = Field(description="Sampling temperature that produced it.")
    avg_logprob: float = Field(description="Mean token log probability; 0.0 when not kept.")
    compression_ratio: float = Field(description="gzip ratio of the text.")
    no_speech_prob: float = Field(description="Probability of no speech; 0.0 when not kept.")


class OpenAIVerboseTranscription(BaseModel):
    """`response_format=verbose_json`."""

    task: Literal["transcribe", "translate"] = Field(description="What was done.")
    language: str = Field(description="The language by name, e.g. `english`.")
    duration: float = Field(description="Audio length in seconds.")
    text: str = Field(description="The whole transcript.")
    segments: list[OpenAISegment] | None = Field(
        default=None, description="Unless only word timestamps were asked for."
    )
    words: list[OpenAIWord] | None = Field(
        default=None, description="With `timestamp_granularities[]=word`."
    )


class OpenAIAccepted(BaseModel):
    """The transcript was not ready within the server's wait: poll for it."""

    task_id: uuid.UUID = Field(description="The task, as in the native API.")
    status: str = Field(description="`queued` or `processing`.")
    result_url: str = Field(description="Poll this (native API; add `?format=srt` etc.).")
    detail: str = Field(description="What happened, in words.")


def language_name(code: str | None) -> str:
    """OpenAI reports the language by name (`english`); an unknown code is passed on."""
    return LANGUAGE_NAMES.get(code or "", code or "")


def verbose_json(
    task: Literal["transcribe", "translate"],
    language: str | None,
    duration: float | None,
    text: str,
    segments: Sequence[Mapping[str, Any]],
    granularities: Sequence[str],
    temperature: float | None,
) -> OpenAIVerboseTranscription:
    """Segments unless only words were asked for, words when they were. Decoder statistics
    this server does not keep get Whisper's neutral values."""
    body = OpenAIVerboseTranscription(
        task=task, language=language_name(language), duration=duration or 0.0, text=text
    )
    if "segment" in granularities or not granularities:
        body.segments = [
            openai_segment(index, segment, temperature) for index, segment in enumerate(segments)
        ]
    if "word" in granularities:
        body.words = [
            OpenAIWord(word=word["word"].strip(), start=word["start"], end=word["end"])
            for segment in segments
            for word in segment.get("words") or ()
        ]
    return body


def openai_segment(
    index: int, segment: Mapping[str, Any], temperature: float | None
) -> OpenAISegment:
    text = segment["text"]
    return OpenAISegment(
        id=index,
        # Whisper's seek counts 10-ms frames; the segment's own start is the nearest we keep.
        seek=segment.get("seek", round(segment["start"] * 100)),
        start=segment["start"],
        end=segment["end"],
        text=text,
        tokens=segment.get("tokens", []),
        temperature=segment.get("temperature", temperature or 0.0),
        avg_logprob=segment.get("avg_logprob", 0.0),
        compression_ratio=segment.get("compression_ratio", compression_ratio(text)),
        no_speech_prob=segment.get("no_speech_prob", 0.0),
    )


def compression_ratio(text: str) -> float:
    """Whisper's gzip ratio of the text (repetitive output scores high)."""
    data = text.encode()
    return round(len(data) / len(zlib.compress(data)), 4) if data else 0.0
