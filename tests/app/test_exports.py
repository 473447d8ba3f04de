"""app/exports.py: stored segments as txt, srt, vtt and tsv, and subtitle line wrapping."""

import itertools

import pytest

from app.exports import (
    SubtitleOptions,
    Word,
    subtitle_cues,
    timestamp,
    to_srt,
    to_tsv,
    to_txt,
    to_vtt,
    wrap,
)
from tests.utils.subtitles import SRT_TIME, VTT_TIME, cues

JFK_SEGMENTS = [
    {"start": 0.0, "end": 8.2,
     "text": "And so, my fellow Americans, ask not what your country can do for you,"},
    {"start": 8.2, "end": 11.0, "text": "ask what you can do for your country."},
]  # fmt: skip


def timed_segment(start: float, words: list[tuple[str, float, float]]) -> dict:
    """A segment with Whisper-style words (leading spaces) covering start..last word end."""
    return {
        "start": start,
        "end": words[-1][2],
        "text": "".join(w for w, _, _ in words).strip(),
        "words": [{"word": w, "start": s, "end": e, "probability": 0.9} for w, s, e in words],
    }


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0, "00:00:00,000", "00:00:00.000"),
        (8.2, "00:00:08,200", "00:00:08.200"),
        (59.9996, "00:01:00,000", "00:01:00.000"),
        (3725.042, "01:02:05,042", "01:02:05.042"),
        (-0.01, "00:00:00,000", "00:00:00.000"),
    ],
)
def test_timestamps_are_hours_minutes_seconds_millis(seconds, srt, vtt):
    assert timestamp(seconds, ",") == srt
    assert timestamp(seconds, ".") == vtt


def test_srt_numbers_one_cue_per_segment():
    assert to_srt(JFK_SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:08,200\n"
        "And so, my fellow Americans, ask not what your country can do for you,\n"
        "\n"
        "2\n00:00:08,200 --> 00:00:11,000\nask what you can do for your country.\n"
    )


def test_vtt_has_its_header_and_escapes_markup():
    vtt = to_vtt([{"start": 1.5, "end": 2.0, "text": "R&D <b>bold</b> --> next"}])
    assert vtt == (
        "WEBVTT\n\n00:00:01.500 --> 00:00:02.000\nR&amp;D &lt;b&gt;bold&lt;/b&gt; --&gt; next\n"
    )


def test_tsv_is_whispers_columns_in_integer_milliseconds():
    segments = [*JFK_SEGMENTS, {"start": 11.0004, "end": 12.3456, "text": " a\tb "}]
    assert to_tsv(segments).splitlines() == [
        "start\tend\ttext",
        "0\t8200\tAnd so, my fellow Americans, ask not what your country can do for you,",
        "8200\t11000\task what you can do for your country.",
        "11000\t12346\ta b",
    ]


def test_txt_is_a_line_per_segment_without_empty_ones():
    segments = [*JFK_SEGMENTS, {"start": 11.0, "end": 12.0, "text": "  "}]
    assert to_txt(segments) == (
        "And so, my fellow Americans, ask not what your country can do for you,\n"
        "ask what you can do for your country.\n"
    )


def test_wrap_breaks_at_words_and_overflows_only_for_a_longer_word():
    words = [Word(f" {w}", 0, 0) for w in ["a", "bb", "ccc", "supercalifragilistic", "dd", "e"]]
    lines = ["".join(w.text for w in line).strip() for line in wrap(words, 8)]
    assert lines == ["a bb ccc", "supercalifragilistic", "dd e"]


def test_line_width_and_count_split_a_segment_into_cues_timed_by_characters():
    options = SubtitleOptions(max_line_width=20, max_line_count=2)
    cues = subtitle_cues(JFK_SEGMENTS, options)
    assert [cue.text for cue in cues] == [
        "And so, my fellow\nAmericans, ask not",
        "what your country\ncan do for you,",
        "ask what you can do\nfor your country.",
    ]
    # Without word times a split falls where its first character lies in the segment, and
    # the segment's bounds stay the outer bounds.
    text = JFK_SEGMENTS[0]["text"]
    split = 8.2 * text.index("what") / len(text)
    assert cues[0].start == 0.0 and cues[0].end == pytest.approx(split)
    assert cues[1].start == pytest.approx(split) and cues[1].end == 8.2
    assert (cues[2].start, cues[2].end) == (8.2, 11.0)


def test_word_times_time_the_split_cues():
    segment = timed_segment(0.0, [
        (" Hello", 0.1, 0.5), (" there,", 0.6, 1.0), (" general", 1.4, 1.9),
        (" Kenobi.", 2.0, 2.6),
    ])  # fmt: skip
    split = subtitle_cues([segment], SubtitleOptions(max_line_width=13, max_line_count=1))
    assert [(c.start, c.end, c.text) for c in split] == [
        (0.0, 1.0, "Hello there,"), (1.4, 1.9, "general"), (2.0, 2.6, "Kenobi."),
    ]  # fmt: skip
    srt = to_srt([segment], SubtitleOptions(max_line_width=13, max_line_count=1))
    assert [(start, end) for start, end, _ in cues(srt)] == [(0.0, 1.0), (1.4, 1.9), (2.0, 2.6)]


def test_words_without_spaces_are_joined_without_spaces():
    segment = timed_segment(0.0, [("我们", 0.0, 0.5), ("今天", 0.5, 1.0), ("很好", 1.0, 1.5)])
    assert [c.text for c in subtitle_cues([segment], SubtitleOptions())] == ["我们今天很好"]
    narrow = subtitle_cues([segment], SubtitleOptions(max_line_width=4))
    assert [c.text for c in narrow] == ["我们今天\n很好"]


def test_cues_never_go_back_in_time():
    overlapping = [
        {"start": 0.0, "end": 2.0, "text": "one two"},
        {"start": 1.5, "end": 3.0, "text": "three"},
    ]
    cues = subtitle_cues(overlapping, SubtitleOptions())
    assert [(c.start, c.end) for c in cues] == [(0.0, 2.0), (2.0, 3.0)]


def test_max_line_count_without_a_width_changes_nothing():
    assert to_srt(JFK_SEGMENTS, SubtitleOptions(max_line_count=1)) == to_srt(JFK_SEGMENTS)


def test_highlight_words_underlines_each_word_in_turn():
    segment = timed_segment(0.0, [(" ask", 0.2, 0.5), (" not", 0.5, 0.9)])
    vtt = to_vtt([segment], SubtitleOptions(highlight_words=True))
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:00.200\nask not\n\n"
        "00:00:00.200 --> 00:00:00.500\n<u>ask</u> not\n\n"
        "00:00:00.500 --> 00:00:00.900\nask <u>not</u>\n"
    )
    # Without word times there is nothing to highlight by.
    assert to_srt(JFK_SEGMENTS, SubtitleOptions(highlight_words=True)) == to_srt(JFK_SEGMENTS)


def test_every_srt_line_respects_the_width_on_long_text():
    text = " ".join(["word"] * 40 + ["x" * 30] + ["end."])
    segments = [{"start": 0.0, "end": 20.0, "text": text}]
    parsed = cues(to_srt(segments, SubtitleOptions(max_line_width=16, max_line_count=3)))
    assert all(len(line) <= 16 or " " not in line for *_, lines in parsed for line in lines)
    assert all(len(lines) <= 3 for *_, lines in parsed)
    assert " ".join(" ".join(lines) for *_, lines in parsed) == text
    starts = [start for start, _, _ in parsed]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_a_segment_at_the_end_of_the_audio_gets_a_cue_that_lasts():
    """Whisper may place a last segment at the instant the audio ends: its cue takes
    MIN_CUE_SECONDS before that instant, from the gap or, with none, from the cue before."""
    after_a_gap = [{"start": 80.0, "end": 88.0, "text": "Run!"},
                   {"start": 89.208, "end": 89.208, "text": "Come on."}]  # fmt: skip
    assert cues(to_srt(after_a_gap)) == [(80.0, 88.0, ["Run!"]), (88.708, 89.208, ["Come on."])]
    right_after = [{**after_a_gap[0], "end": 89.208}, after_a_gap[1]]
    assert cues(to_vtt(right_after), VTT_TIME) == [
        (80.0, 88.708, ["Run!"]), (88.708, 89.208, ["Come on."])
    ]  # fmt: skip
    assert to_tsv(right_after).splitlines()[1:] == ["80000\t88708\tRun!", "88708\t89208\tCome on."]


def test_words_given_no_time_still_get_highlight_cues_that_last():
    segment = timed_segment(0.0, [(" Come", 0.0, 0.4), (" on", 0.4, 0.4), (" now.", 0.4, 0.4)])
    vtt = to_vtt([segment], SubtitleOptions(highlight_words=True))
    assert cues(vtt, VTT_TIME) == [
        (0.0, 0.2, ["<u>Come</u> on now."]),
        (0.2, 0.3, ["Come <u>on</u> now."]),
        (0.3, 0.4, ["Come on <u>now.</u>"]),
    ]


@pytest.mark.parametrize(
    "options",
    [SubtitleOptions(), SubtitleOptions(highlight_words=True),
     SubtitleOptions(max_line_width=8, max_line_count=1)],
)  # fmt: skip
def test_no_cue_of_any_export_lasts_no_time(options):
    """Instants at the start, in a row, inside an earlier segment and at the end; words with
    no time; a split cue whose words have none."""
    counting = [(" one", 1.0, 1.5), (" two", 1.5, 1.5), (" three", 1.5, 1.5), (" four", 2.0, 2.0)]
    segments = [
        timed_segment(0.0, [(" Go", 0.0, 0.0)]),
        {"start": 0.0, "end": 0.0, "text": "again"},
        timed_segment(1.0, counting),
        {"start": 1.2, "end": 1.8, "text": "inside"},
        {"start": 3.0, "end": 3.0004, "text": "end"},
    ]
    for body, pattern in ((to_srt(segments, options), SRT_TIME),
                          (to_vtt(segments, options), VTT_TIME)):  # fmt: skip
        timed = cues(body, pattern)
        assert all(end > start for start, end, _ in timed), body
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(timed)), body
        assert "again" in body and "inside" in body and "end" in body
    rows = [row.split("\t") for row in to_tsv(segments).splitlines()[1:]]
    assert len(rows) == len(segments) and all(int(end) > int(start) for start, end, _ in rows)
