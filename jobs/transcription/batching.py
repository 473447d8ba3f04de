"""Transcribing many short clips together: one encoder/decoder batch instead of one call each.

Whisper's encoder always processes a full 30-s window and a decoder step costs about the same
for one sequence as for several, so clips transcribed one at a time waste most of the model.
Here every clip is a *stream* of 30-s windows and all streams advance in lockstep: each step
encodes one window of up to `batch_size` streams at once and decodes them in one `generate`
call. Per stream, the step does what faster-whisper's sequential `generate_segments` does for
one window (same options object, same timestamp rules, no-speech skip, seeking to the last
timestamp), so a clip's text matches a one-at-a-time run. A window whose text needs
faster-whisper's temperature fallback leaves the batch with its clip: the fallback samples at
random, and only the one-at-a-time path samples from the task's own seed (seeding.py).
Each clip is reported done as soon as its own stream is.

With `pack`, clips shorter than half a window share a stream, separated by PACK_GAP_SECONDS of
silence, and segments go back to their clip by time. Whisper sometimes merges two clips into
one segment or skips one; every packed clip is therefore checked (it has text if it has
speech, no segment straddles two clips, nothing was heard in the silence between them) and
re-decoded on its own when the check fails.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio
from faster_whisper.vad import VadOptions, get_speech_timestamps

from jobs.transcription.engine import (
    SAMPLE_RATE,
    LoadedModel,
    Transcript,
    TranscriptionOptions,
    audible,
)

# Clips longer than this are not batched: they need more than one window anyway.
MAX_CLIP_SECONDS = 30.0
# Silence between two packed clips: long enough for Whisper to close a segment.
PACK_GAP_SECONDS = 2.0
WINDOW_SECONDS = 30.0
# Whisper's segment timestamps are often a second late or early; a segment mixes two clips'
# words only when it reaches further than this into its second clip.
STRADDLE_TOLERANCE_SECONDS = 1.5
# A packed clip with speech but fewer words than this per second of speech (people say two
# or three) lost most of its words to a neighbour or to a decoding collapse.
MIN_WORDS_PER_SPEECH_SECOND = 0.5


@dataclass
class Clip:
    samples: np.ndarray
    speech_seconds: float  # what Silero VAD calls speech
    language: str
    language_probability: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def has_speech(self) -> bool:
        return self.speech_seconds > 0


@dataclass
class Stream:
    """Audio decoded window by window; holds one clip, or several packed ones."""

    clips: list[int]  # indexes into the batch's clips
    spans: list[tuple[float, float]]  # each clip's start and end in the stream, seconds
    features: np.ndarray
    tokenizer: Tokenizer
    condition_on_previous_text: bool
    all_tokens: list[int] = field(default_factory=list)
    prompt_reset_since: int = 0
    seek: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    handed_off: bool = False  # a window needed temperature fallback: transcribed alone instead

    @property
    def content_frames(self) -> int:
        return int(self.features.shape[-1]) - 1

    @property
    def done(self) -> bool:
        return self.handed_off or self.seek >= self.content_frames

    @property
    def covered_frames(self) -> int:
        return self.content_frames if self.done else self.seek


@dataclass
class BatchStats:
    clips: int = 0
    streams: int = 0
    steps: int = 0
    packed_clips: int = 0
    rechecked_clips: int = 0  # packed clips that failed the check and were decoded alone
    temperature_fallbacks: int = 0  # windows that needed one: their clips left the batch
    seconds: float = 0.0


# Called after every batched step with the share of the audio decoded so far (0 to 1).
StepCallback = Callable[[float], None]
# Called with a clip's index and transcript as soon as that clip is done.
DoneCallback = Callable[[int, Transcript], None]


def transcribe_clips(
    model: LoadedModel,
    samples: Sequence[np.ndarray],
    options: TranscriptionOptions,
    batch_size: int,
    pack: bool,
    on_step: StepCallback = lambda covered: None,
    stats: BatchStats | None = None,
    on_done: DoneCallback = lambda index, transcript: None,
) -> list[Transcript | None]:
    """Transcripts of `samples` (16 kHz mono float32 clips of at most 30 s), in order; None
    for a clip whose decoding needs temperature fallback (to be transcribed alone).

    Every clip gets the same options; language is detected per clip when `options.language`
    is None and the model is multilingual. `on_step` runs after every batched step and may
    raise to stop (time limit, shutdown); `on_done` as soon as a clip is done.
    """
    stats = stats if stats is not None else BatchStats()
    started = time.monotonic()
    clips = [describe_clip(model, clip, options) for clip in samples]
    stats.clips = len(clips)
    fw_options = faster_whisper_options(model, options)
    tokenizers: dict[str, Tokenizer] = {}

    def tokenizer_for(language: str) -> Tokenizer:
        if language not in tokenizers:
            tokenizers[language] = Tokenizer(
                model.whisper.hf_tokenizer, model.whisper.model.is_multilingual,
                task=options.task, language=language,
            )  # fmt: skip
        return tokenizers[language]

    transcripts: list[Transcript | None] = [None] * len(clips)
    recheck: list[int] = []

    def finish(i: int, segments: list[dict[str, Any]]) -> None:
        transcripts[i] = transcript = transcript_of(clips[i], segments)
        on_done(i, transcript)

    def finish_stream(stream: Stream) -> None:
        if stream.handed_off:
            return
        assigned, failed = assign_segments(stream, clips)
        recheck.extend(failed)
        for i in stream.clips:
            if i not in failed:
                finish(i, assigned[i])

    for i in (i for i, clip in enumerate(clips) if not clip.has_speech):
        finish(i, [])  # nothing to decode: done before any other clip is started
    with_speech = [i for i, clip in enumerate(clips) if clip.has_speech]
    groups = plan_streams(clips, with_speech, pack)
    streams = [make_stream(model, clips, group, tokenizer_for, fw_options) for group in groups]
    stats.streams = len(streams)
    stats.packed_clips = sum(len(g) for g in groups if len(g) > 1)
    decode_streams(model, streams, fw_options, batch_size, on_step, stats, finish_stream)
    if recheck:
        stats.rechecked_clips = len(recheck)
        alone = [make_stream(model, clips, [i], tokenizer_for, fw_options) for i in recheck]
        decode_streams(model, alone, fw_options, batch_size, on_step, stats, finish_stream)

    stats.seconds = time.monotonic() - started
    return transcripts


def describe_clip(model: LoadedModel, samples: np.ndarray, options: TranscriptionOptions) -> Clip:
    if len(samples) > MAX_CLIP_SECONDS * SAMPLE_RATE:
        raise ValueError(f"clips longer than {MAX_CLIP_SECONDS:g} s are not batched")
    speech = speech_seconds(samples)
    if not model.whisper.model.is_multilingual:
        return Clip(samples, speech, "en", 1.0)
    if options.language is not None:
        return Clip(samples, speech, options.language, 1.0)
    if not speech:
        return Clip(samples, speech, "en", 0.0)  # nothing to transcribe, nothing to detect
    language, probability, _ = model.whisper.detect_language(samples)
    return Clip(samples, speech, language, float(probability))


def speech_seconds(samples: np.ndarray) -> float:
    """What Silero VAD calls speech, heard at an audible level as the single-task gate does."""
    chunks = get_speech_timestamps(audible(samples), VadOptions())
    return sum(chunk["end"] - chunk["start"] for chunk in chunks) / SAMPLE_RATE


def faster_whisper_options(model: LoadedModel, options: TranscriptionOptions) -> Any:
    """The exact `TranscriptionOptions` object `WhisperModel.transcribe` builds for these
    options (every default included), taken from a call on a moment of silence: its segments
    generator is lazy, so nothing is decoded."""
    _, info = model.whisper.transcribe(
        np.zeros(SAMPLE_RATE // 10, dtype=np.float32),
        language=options.language or "en",
        task=options.task,
        beam_size=options.beam_size,
        hotwords=options.hotwords,
        initial_prompt=options.initial_prompt,
        **({} if options.temperature is None else {"temperature": options.temperature}),
    )
    return info.transcription_options


def plan_streams(clips: list[Clip], indexes: list[int], pack: bool) -> list[list[int]]:
    """Which clips share a stream: first-fit by decreasing length into 30-s windows, same
    language only; clips too long to pair up get a stream each."""
    if not pack:
        return [[i] for i in indexes]
    single = [[i] for i in indexes if clips[i].seconds > (WINDOW_SECONDS - PACK_GAP_SECONDS) / 2]
    bins: list[tuple[float, str, list[int]]] = []
    candidates = sorted((i for i in indexes if [i] not in single), key=lambda i: -clips[i].seconds)
    for i in candidates:
        for n, (used, language, members) in enumerate(bins):
            if language == clips[i].language and used + PACK_GAP_SECONDS + clips[i].seconds <= (
                WINDOW_SECONDS
            ):
                bins[n] = (used + PACK_GAP_SECONDS + clips[i].seconds, language, [*members, i])
                break
        else:
            bins.append((clips[i].seconds, clips[i].language, [i]))
    return single + [sorted(members) for _, _, members in bins]


def make_stream(
    model: LoadedModel,
    clips: list[Clip],
    members: list[int],
    tokenizer_for: Callable[[str], Tokenizer],
    fw_options: Any,
) -> Stream:
    gap = np.zeros(int(PACK_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    spans: list[tuple[float, float]] = []
    position = 0
    for n, i in enumerate(members):
        if n:
            parts.append(gap)
            position += len(gap)
        parts.append(clips[i].samples)
        spans.append((position / SAMPLE_RATE, (position + len(clips[i].samples)) / SAMPLE_RATE))
        position += len(clips[i].samples)
    audio = np.concatenate(parts) if len(parts) > 1 else parts[0]
    stream = Stream(
        clips=members,
        spans=spans,
        features=model.whisper.feature_extractor(audio),
        tokenizer=tokenizer_for(clips[members[0]].language),
        # A packed window must not be prompted with another clip's words.
        condition_on_previous_text=len(members) == 1 and fw_options.condition_on_previous_text,
    )
    if fw_options.initial_prompt:
        stream.all_tokens = stream.tokenizer.encode(" " + fw_options.initial_prompt.strip())
    return stream


def decode_streams(
    model: LoadedModel,
    streams: list[Stream],
    fw_options: Any,
    batch_size: int,
    on_step: StepCallback,
    stats: BatchStats,
    on_stream_done: Callable[[Stream], None],
) -> None:
    """Advance every stream window by window, `batch_size` streams per encode/generate;
    `on_stream_done` runs for each stream as soon as it is done."""
    while active := [s for s in streams if not s.done]:
        # CTranslate2 wants <|startoftranscript|> at the same place in every prompt of a
        # batch: streams whose prompt carries a different amount of previous text wait.
        prompts = {id(s): prompt_for(model, s, fw_options) for s in active}
        by_position: dict[int, list[Stream]] = {}
        for s in active:
            by_position.setdefault(prompts[id(s)].index(s.tokenizer.sot), []).append(s)
        # Streams with the most audio left first: a batch of windows decodes until its longest
        # text ends, so windows of like length waste the fewest decoder steps.
        largest = max(by_position.values(), key=len)
        largest.sort(key=lambda s: s.content_frames - s.seek, reverse=True)
        group = largest[: max(1, batch_size)]
        step(model, group, [prompts[id(s)] for s in group], fw_options, stats)
        stats.steps += 1
        for stream in group:
            if stream.done:
                on_stream_done(stream)
        decoded = sum(s.covered_frames for s in streams)
        on_step(decoded / max(1, sum(s.content_frames for s in streams)))


def prompt_for(model: LoadedModel, stream: Stream, options: Any) -> list[int]:
    prompt: list[int] = model.whisper.get_prompt(
        stream.tokenizer,
        stream.all_tokens[stream.prompt_reset_since :],
        without_timestamps=options.without_timestamps,
        prefix=options.prefix if stream.seek == 0 else None,
        hotwords=options.hotwords,
    )
    return prompt


def step(
    model: LoadedModel,
    streams: list[Stream],
    prompts: list[list[int]],
    options: Any,
    stats: BatchStats,
) -> None:
    """One window of each stream: faster-whisper's `generate_segments` loop body, batched."""
    whisper = model.whisper
    n_frames = whisper.feature_extractor.nb_max_frames
    sizes = [min(n_frames, s.content_frames - s.seek) for s in streams]
    windows = [
        pad_or_trim(s.features[:, s.seek : s.seek + n]) for s, n in zip(streams, sizes, strict=True)
    ]
    encoder_output = whisper.encode(np.stack(windows))
    temperature = options.temperatures[0]
    results = generate(whisper, encoder_output, prompts, options, temperature)
    for stream, size, result in zip(streams, sizes, results, strict=True):
        decoded = judge(result, stream, options, temperature)
        if decoded.needs_fallback and len(options.temperatures) > 1:
            # faster-whisper would sample this window again at higher temperatures.
            stats.temperature_fallbacks += 1
            stream.handed_off = True
            continue
        # With no temperature to fall back to, faster-whisper keeps this one result too.
        advance(whisper, stream, size, options, decoded)


class Decoded(NamedTuple):
    result: Any
    avg_logprob: float
    temperature: float
    needs_fallback: bool


def generate(
    whisper: Any, encoder_output: Any, prompts: list[list[int]], options: Any, temperature: float
) -> list[Any]:
    if temperature > 0:
        sampling = {"beam_size": 1, "num_hypotheses": options.best_of, "sampling_topk": 0,
                    "sampling_temperature": temperature}  # fmt: skip
    else:
        sampling = {"beam_size": options.beam_size, "patience": options.patience}
    max_length = whisper.max_length
    if options.max_new_tokens is not None:
        max_length = min(max_length, max(len(p) for p in prompts) + options.max_new_tokens)
    results: list[Any] = whisper.model.generate(
        encoder_output,
        prompts,
        length_penalty=options.length_penalty,
        repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        max_length=max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=options.suppress_blank,
        suppress_tokens=options.suppress_tokens,
        max_initial_timestamp_index=round(options.max_initial_timestamp / whisper.time_precision),
        **sampling,
    )
    return results


def judge(result: Any, stream: Stream, options: Any, temperature: float) -> Decoded:
    """The rules of faster-whisper's `generate_with_fallback` for one decoded window."""
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * (len(tokens) ** options.length_penalty) / (len(tokens) + 1)
    compression_ratio = max(
        get_compression_ratio(stream.tokenizer.decode(part).strip() or " ")
        for part in repetition_units(tokens, stream)
    )
    too_repetitive = (
        options.compression_ratio_threshold is not None
        and compression_ratio > options.compression_ratio_threshold
    )
    unlikely = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silence = (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and unlikely
    )
    return Decoded(result, avg_logprob, temperature, (too_repetitive or unlikely) and not silence)


def repetition_units(tokens: list[int], stream: Stream) -> list[list[int]]:
    """The text whose repetitiveness marks a hallucination loop: the whole window for a single
    clip (as faster-whisper judges it), each timestamped segment for packed clips, whose
    words may repeat each other legitimately (the same voice note sent twice)."""
    if len(stream.clips) == 1:
        return [tokens]
    units: list[list[int]] = [[]]
    for token in tokens:
        if token >= stream.tokenizer.timestamp_begin:
            if units[-1]:
                units.append([])
        else:
            units[-1].append(token)
    return units


def advance(
    whisper: Any,
    stream: Stream,
    size: int,
    options: Any,
    decoded: Decoded,
) -> None:
    """Store the window's segments and move the stream on, as `generate_segments` does."""
    result, avg_logprob, temperature = decoded.result, decoded.avg_logprob, decoded.temperature
    time_offset = stream.seek * whisper.feature_extractor.time_per_frame
    if options.no_speech_threshold is not None:
        skip = result.no_speech_prob > options.no_speech_threshold
        if options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold:
            skip = False
        if skip:
            stream.seek += size
            return
    segments, stream.seek, _ = whisper._split_segments_by_timestamps(
        tokenizer=stream.tokenizer,
        tokens=result.sequences_ids[0],
        time_offset=time_offset,
        segment_size=size,
        segment_duration=size * whisper.feature_extractor.time_per_frame,
        seek=stream.seek,
    )
    for segment in segments:
        text = stream.tokenizer.decode(segment["tokens"])
        if segment["start"] == segment["end"] or not text.strip():
            continue
        stream.all_tokens.extend(segment["tokens"])
        stream.segments.append({"start": segment["start"], "end": segment["end"], "text": text})
    if not stream.condition_on_previous_text or temperature > options.prompt_reset_on_temperature:
        stream.prompt_reset_since = len(stream.all_tokens)


def assign_segments(
    stream: Stream, clips: list[Clip]
) -> tuple[dict[int, list[dict[str, Any]]], list[int]]:
    """Each segment to the clip it overlaps most, in that clip's own time; and the clips that
    fail the check (to be decoded alone)."""
    if len(stream.clips) == 1:
        return {stream.clips[0]: stream.segments}, []
    assigned: dict[int, list[dict[str, Any]]] = {i: [] for i in stream.clips}
    failed: set[int] = set()
    for segment in stream.segments:
        overlaps = [
            (min(end, segment["end"]) - max(start, segment["start"]), i, start, end)
            for i, (start, end) in zip(stream.clips, stream.spans, strict=True)
        ]
        overlaps.sort(reverse=True)
        best, i, start, end = overlaps[0]
        if best <= 0:
            # Words heard in the silence between clips belong to one of them: unsafe.
            failed.update(j for overlap, j, _, _ in overlaps[:2])
            continue
        if len(overlaps) > 1 and overlaps[1][0] > STRADDLE_TOLERANCE_SECONDS:
            failed.update((i, overlaps[1][1]))
        assigned[i].append({
            **segment,
            "start": max(0.0, segment["start"] - start),
            "end": min(end - start, segment["end"] - start),
        })  # fmt: skip
    for i in stream.clips:
        words = sum(len(segment["text"].split()) for segment in assigned[i])
        if words < MIN_WORDS_PER_SPEECH_SECOND * clips[i].speech_seconds:
            failed.add(i)
    return assigned, sorted(failed)


def transcript_of(clip: Clip, segments: list[dict[str, Any]]) -> Transcript:
    text = "".join(s["text"] for s in segments).strip()
    return Transcript(
        language=clip.language if clip.has_speech else None,
        language_probability=round(clip.language_probability, 4) if clip.has_speech else None,
        duration=round(clip.seconds, 3),
        text=text,
        segments=[
            {
                # Held within the clip, as the single-task path does (engine.segment_row).
                "start": round(min(s["start"], clip.seconds), 3),
                "end": round(min(s["end"], clip.seconds), 3),
                "text": s["text"].strip(),
            }
            for s in segments
        ],
    )
