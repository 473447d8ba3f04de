"""Exports of a real transcription of jfk.flac: `?format=` on the result route and the
/export alias, their content types, download names and subtitle options."""

import itertools
from urllib.parse import quote

from fastapi.testclient import TestClient

from tests.utils.api import submit
from tests.utils.audio import JFK_LINE, audio_file, normalize
from tests.utils.subtitles import cues

SRT_TIME = r"\d\d:\d\d:\d\d,\d{3}"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d{3}"


def assert_increasing(parsed: list[tuple[float, float, list[str]]]) -> None:
    starts = [start for start, _, _ in parsed]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), starts
    assert all(start <= end for start, end, _ in parsed)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(parsed)), "overlap"


def export(client: TestClient, task_id: str, export_format: str, **params: object):
    response = client.get(
        f"/api/v1/asr/result/{task_id}", params={"format": export_format, **params}
    )
    assert response.status_code == 200, response.text
    return response


def test_every_format_of_jfk_is_well_formed(client, run_worker):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    not_yet = client.get(f"/api/v1/asr/result/{task_id}", params={"format": "srt"})
    assert not_yet.status_code == 409
    assert not_yet.json()["error"] == "transcript not ready"
    assert not_yet.json()["status"] == "queued" and "queued" in not_yet.json()["detail"]
    run_worker()

    default = client.get(f"/api/v1/asr/result/{task_id}").json()  # unchanged without format
    assert default["status"] == "done" and JFK_LINE in normalize(default["text"])

    txt = export(client, task_id, "txt")
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    assert txt.headers["content-disposition"].startswith('attachment; filename="jfk.txt"')
    assert txt.text.splitlines() == [s["text"] for s in default["segments"]]

    srt = export(client, task_id, "srt")
    assert srt.headers["content-type"].startswith("application/x-subrip")
    assert 'filename="jfk.srt"' in srt.headers["content-disposition"]
    numbers = [block.split("\n")[0] for block in srt.text.strip().split("\n\n")]
    assert numbers == [str(n) for n in range(1, len(numbers) + 1)]
    srt_cues = cues(srt.text, SRT_TIME)
    assert_increasing(srt_cues)
    assert JFK_LINE in normalize(" ".join(" ".join(lines) for *_, lines in srt_cues))
    assert srt_cues[-1][1] <= default["duration"] + 0.5

    vtt = export(client, task_id, "vtt")
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    assert vtt.text.startswith("WEBVTT\n\n")
    vtt_cues = cues(vtt.text.removeprefix("WEBVTT\n\n"), VTT_TIME)
    assert_increasing(vtt_cues)
    assert [(s, e) for s, e, _ in vtt_cues] == [(s, e) for s, e, _ in srt_cues]

    tsv = export(client, task_id, "tsv")
    assert tsv.headers["content-type"] == "text/tab-separated-values; charset=utf-8"
    header, *rows = tsv.text.splitlines()
    assert header == "start\tend\ttext"
    for row, segment in zip(rows, default["segments"], strict=True):
        start, end, text = row.split("\t")
        assert (int(start), int(end)) == (round(segment["start"] * 1000),
                                          round(segment["end"] * 1000))  # fmt: skip
        assert text == segment["text"]

    document = export(client, task_id, "json")
    assert document.headers["content-type"] == "application/json"
    assert 'filename="jfk.json"' in document.headers["content-disposition"]
    body = document.json()
    assert body["task_id"] == task_id and body["language"] == "en"
    assert JFK_LINE in normalize(body["text"])
    assert [s["text"] for s in body["segments"]] == [s["text"] for s in default["segments"]]
    assert all("words" not in s for s in body["segments"])  # not requested

    alias = client.get(f"/api/v1/asr/export/{task_id}/vtt")
    assert alias.status_code == 200 and alias.text == vtt.text
    assert alias.headers["content-disposition"] == vtt.headers["content-disposition"]


def test_line_width_and_count_are_honoured(client, run_worker):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    run_worker()
    default = client.get(f"/api/v1/asr/result/{task_id}").json()
    for export_format, pattern, prefix in (("srt", SRT_TIME, ""), ("vtt", VTT_TIME, "WEBVTT\n\n")):
        body = export(client, task_id, export_format, max_line_width=20, max_line_count=2).text
        parsed = cues(body.removeprefix(prefix), pattern)
        lines = [line for *_, cue_lines in parsed for line in cue_lines]
        assert all(len(line) <= 20 for line in lines), lines
        assert all(1 <= len(cue_lines) <= 2 for *_, cue_lines in parsed)
        assert len(parsed) > len(default["segments"])  # long segments were split
        assert_increasing(parsed)
        assert " ".join(lines) == " ".join(s["text"] for s in default["segments"])
        assert parsed[0][0] == round(default["segments"][0]["start"], 3)
        assert parsed[-1][1] == round(default["segments"][-1]["end"], 3)


def test_word_timestamps_appear_in_json_and_time_the_cues(client, run_worker):
    name = "JFK; ask not, café.flac"
    task_id = submit(client, audio_file("jfk.flac"), name=name, word_timestamps="true")
    task_id = task_id.json()["task_id"]
    run_worker()

    body = export(client, task_id, "json").json()
    words = [w for s in body["segments"] for w in s["words"]]
    assert "Americans" in "".join(w["word"] for w in words)
    assert all(w["start"] <= w["end"] for w in words)

    srt = export(client, task_id, "srt", max_line_width=20, max_line_count=1)
    exact = quote("JFK; ask not, café.srt", safe="")
    assert srt.headers["content-disposition"] == (
        f"attachment; filename=\"JFK; ask not, caf_.srt\"; filename*=UTF-8''{exact}"
    )
    parsed = cues(srt.text, SRT_TIME)
    assert_increasing(parsed)
    starts = {round(w["start"], 3) for w in words}
    segment_starts = {round(s["start"], 3) for s in body["segments"]}
    # A cue that starts inside a segment starts when its first word is spoken.
    assert all(start in starts | segment_starts for start, _, _ in parsed)
    assert any(start in starts - segment_starts for start, _, _ in parsed)

    highlighted = export(client, task_id, "vtt", highlight_words="true").text
    assert highlighted.count("<u>") >= len(words) - 1
    assert_increasing(cues(highlighted.removeprefix("WEBVTT\n\n"), VTT_TIME))


def test_bad_export_requests_are_422_naming_what_is_accepted(client, run_worker):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    for path, params in (
        (f"/api/v1/asr/result/{task_id}", {"format": "docx"}),
        (f"/api/v1/asr/export/{task_id}/docx", {}),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"][-1] == "format" and error["input"] == "docx"
        assert all(f"'{name}'" in error["msg"] for name in ("txt", "json", "srt", "vtt", "tsv"))
    too_narrow = client.get(f"/api/v1/asr/result/{task_id}",
                            params={"format": "srt", "max_line_width": 0})  # fmt: skip
    assert too_narrow.status_code == 422
    assert too_narrow.json()["detail"][0]["loc"] == ["query", "max_line_width"]
    run_worker()
    no_words = client.get(f"/api/v1/asr/export/{task_id}/srt?highlight_words=true")
    assert no_words.status_code == 422
    assert "word_timestamps=true" in no_words.json()["detail"][0]["msg"]
