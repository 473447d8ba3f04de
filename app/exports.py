"""Transcripts as files: plain text, SubRip, WebVTT and TSV, written the way Whisper's own
writers do, plus subtitle line wrapping. Pure functions of the stored segments
(`[{"start", "end", "text", "words"?: [{"start", "end", "word", ...}]}]`)."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

ExportFormat = Literal["txt", "json", "srt", "vtt", "tsv"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
MEDIA_TYPES: dict[str, str] = {
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "tsv": "text/tab-separated-values; charset=utf-8",
}

Segment = Mapping[str, Any]
Escape = Callable[[str], str]
Timed = tuple[float, float, str]  # start, end, text of one cue or row
# What a cue or row that would last no time is given (see `_lasting`): long enough to read a
# short phrase, and taken at most half from the cue before it.
MIN_CUE_SECONDS = 0.5


@dataclass(frozen=True)
class SubtitleOptions:
    """`max_line_width` wraps each segment's text at word boundaries and splits it into cues
    of at most `max_line_count` lines; without a width segments stay whole, one per cue."""

    max_line_width: int | None = None
    max_line_count: int | None = None
    highlight_words: bool = False  # one cue per spoken word, that word underlined


@dataclass(frozen=True)
class Word:
    text: str  # with Whisper's leading space where the language puts one
    start: float
    end: float


def line_text(words: Iterable[Word]) -> str:
    return "".join(word.text for word in words).strip()


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[tuple[Word, ...], ...]
    timed_words: bool  # the words carry Whisper's own times, not interpolated ones

    @property
    def text(self) -> str:
        return "\n".join(line_text(line) for line in self.lines)


def to_txt(segments: Iterable[Segment]) -> str:
    """One line per segment, like `whisper --output_format txt`."""
    return "".join(f"{text}\n" for s in segments if (text := s["text"].strip()))


def to_tsv(segments: Iterable[Segment]) -> str:
    """Whisper's TSV: integer milliseconds, tabs in the text turned into spaces."""
    timed = [(float(s["start"]), float(s["end"]), s["text"].strip().replace("\t", " "))
             for s in segments]  # fmt: skip
    rows = ["start\tend\ttext\n"]
    for start, end, text in _lasting(timed):
        rows.append(f"{round(1000 * start)}\t{round(1000 * end)}\t{text}\n")
    return "".join(rows)


def to_srt(segments: Iterable[Segment], options: SubtitleOptions = SubtitleOptions()) -> str:
    blocks = []
    for number, (start, end, text) in enumerate(_timed_texts(segments, options), 1):
        blocks.append(f"{number}\n{timestamp(start, ',')} --> {timestamp(end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(segments: Iterable[Segment], options: SubtitleOptions = SubtitleOptions()) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _timed_texts(segments, options, escape=_vtt_escape):
        blocks.append(f"{timestamp(start, '.')} --> {timestamp(end, '.')}\n{text}\n")
    return "\n".join(blocks)


def timestamp(seconds: float, decimal_marker: str) -> str:
    """HH:MM:SS,mmm (SubRip) or HH:MM:SS.mmm (WebVTT)."""
    millis = _millis(seconds)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def subtitle_cues(segments: Iterable[Segment], options: SubtitleOptions) -> list[Cue]:
    """Each non-empty segment as one cue, or, with a line width, as cues of wrapped lines.
    Cues never overlap: each starts no earlier than the one before ends."""
    cues: list[Cue] = []
    for segment in segments:
        for cue in _segment_cues(segment, options):
            floor = cues[-1].end if cues else 0.0
            start = max(cue.start, floor)
            cues.append(Cue(start, max(cue.end, start), cue.lines, cue.timed_words))
    return cues


def wrap(words: Sequence[Word], width: int) -> list[list[Word]]:
    """Greedy wrapping at word boundaries: a line exceeds `width` only when one word does."""
    lines: list[list[Word]] = []
    for word in words:
        if lines and len(line_text([*lines[-1], word])) <= width:
            lines[-1].append(word)
        else:
            lines.append([word])
    return lines


def _segment_cues(segment: Segment, options: SubtitleOptions) -> list[Cue]:
    start, end = float(segment["start"]), float(segment["end"])
    words, timed = _segment_words(segment)
    if not words:
        return []
    if options.max_line_width is None:
        lines: list[list[Word]] = [words]
    else:
        lines = wrap(words, options.max_line_width)
    per_cue = options.max_line_count or len(lines)
    groups = [lines[i : i + per_cue] for i in range(0, len(lines), per_cue)]
    cues = []
    for index, group in enumerate(groups):
        # The segment's own bounds outside; between cues, Whisper's word times, or with
        # interpolated times the next cue's start, so that cues meet.
        cue_start = start if index == 0 else group[0][0].start
        if index == len(groups) - 1:
            cue_end = end
        elif timed:
            cue_end = group[-1][-1].end
        else:
            cue_end = groups[index + 1][0][0].start
        cues.append(Cue(_clamp(cue_start, start, end), _clamp(cue_end, start, end),
                        tuple(tuple(line) for line in group), timed))  # fmt: skip
    return cues


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _segment_words(segment: Segment) -> tuple[list[Word], bool]:
    """The segment's words with times: Whisper's when it has them, else spread over the
    segment in proportion to their characters."""
    timed = [
        Word(str(w["word"]), float(w["start"]), float(w["end"]))
        for w in segment.get("words") or ()
        if str(w["word"]).strip()
    ]
    if timed:
        return timed, True
    tokens = segment["text"].split()
    total = len(" ".join(tokens))
    start, end = float(segment["start"]), float(segment["end"])
    words, offset = [], 0
    for index, token in enumerate(tokens):
        word_start = start + (end - start) * offset / total
        offset += len(token)
        word_end = start + (end - start) * offset / total
        words.append(Word(f" {token}" if index else token, word_start, word_end))
        offset += 1
    return words, False


def _timed_texts(
    segments: Iterable[Segment], options: SubtitleOptions, escape: Escape = str
) -> list[Timed]:
    """(start, end, text) for every cue; with `highlight_words` and Whisper's word times, one
    entry per word (underlined) and one for each pause between words. None lasts no time."""
    texts: list[Timed] = []
    for cue in subtitle_cues(segments, options):
        if not (options.highlight_words and cue.timed_words):
            texts.append((cue.start, cue.end, escape(cue.text)))
            continue
        flat = [word for line in cue.lines for word in line]
        last_end = cue.start
        for index, word in enumerate(flat):
            word_start = _clamp(word.start, last_end, cue.end)
            word_end = _clamp(word.end, word_start, cue.end)
            if word_start > last_end:
                texts.append((last_end, word_start, escape(cue.text)))
            texts.append((word_start, word_end, _underlined(cue, index, escape)))
            last_end = word_end
        if cue.end > last_end:
            texts.append((last_end, cue.end, escape(cue.text)))
    return _lasting(texts)


def _lasting(timed: Iterable[Timed]) -> list[Timed]:
    """The cues or rows, each lasting at least a millisecond as written. Whisper may put a
    segment (at the very end of the audio) or a word at one instant: such an entry gets
    MIN_CUE_SECONDS ending there, taken from the gap before it or at most the second half of
    the entry before it (which then ends sooner); only with no room before it (at the start
    of the audio) does it reach forward instead, and later entries start after it."""
    lasting: list[Timed] = []
    floor = 0.0  # after an entry that reached forward, where the next may start
    for start, end, text in timed:
        start = max(start, floor)
        end = max(end, start)
        if _millis(end) > _millis(start):
            lasting.append((start, end, text))
            continue
        earliest = max(0.0, start - MIN_CUE_SECONDS)
        if lasting:
            before_start, before_end, before_text = lasting[-1]
            earliest = max(earliest, (before_start + before_end) / 2)
            if _millis(earliest) < _millis(start) and before_end > earliest:
                lasting[-1] = (before_start, earliest, before_text)
        if _millis(earliest) < _millis(start):
            lasting.append((earliest, start, text))
        else:
            floor = start + MIN_CUE_SECONDS
            lasting.append((start, floor, text))
    return lasting


def _millis(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _underlined(cue: Cue, index: int, escape: Escape) -> str:
    lines, position = [], 0
    for line in cue.lines:
        parts = []
        for word in line:
            text = escape(word.text)
            if position == index:
                core = text.lstrip()
                text = f"{text[: len(text) - len(core)]}<u>{core}</u>"
            parts.append(text)
            position += 1
        lines.append("".join(parts).strip())
    return "\n".join(lines)


def _vtt_escape(text: str) -> str:
    """WebVTT cue text is markup: `&` and `<` would start entities and tags (and an escaped
    `>` also keeps `-->` out of the text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
