"""Every odd input a client can send gets a documented 4xx or a task that ends with a reason
(or, for silence and noise, `done` with no invented text). Never a 500; the service keeps
serving."""

import struct
import uuid
from pathlib import Path

import numpy as np
from sqlalchemy import select

from app.config import Settings
from models import Task
from models.db import session_scope
from tests.utils.api import result
from tests.utils.audio import JFK_LINE, audio_file, make_video, normalize, wav_bytes

SR = 16000


def impossible_wav() -> bytes:
    header = b"RIFF" + struct.pack("<I", 36 + 800) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, 0, 0, 0, 0, 16) + b"data"  # 0 channels, 0 Hz
    return header + struct.pack("<I", 800) + b"\x01" * 800


def multipart(filename: bytes, content: bytes, content_type: bytes = b"audio/flac") -> tuple:
    """A hand-made body, so the file name can hold any bytes at all."""
    boundary = uuid.uuid4().hex.encode()
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="audio"; filename="'
            + filename + b'"\r\nContent-Type: ' + content_type + b"\r\n\r\n" + content
            + b"\r\n--" + boundary + b"--\r\n")  # fmt: skip
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}


def test_the_bad_input_corpus(client, run_worker, settings: Settings, tmp_path: Path):
    jfk = audio_file("jfk.flac").read_bytes()
    mp3 = audio_file("multilingual.mp3").read_bytes()
    noise = np.random.default_rng(7).uniform(-0.5, 0.5, SR * 30).astype(np.float32)
    text = b"this is a text file, not audio\n" * 40
    silent_video = make_video(tmp_path / "v.mp4", audio_codec=None).read_bytes()
    # name -> (file name, bytes, extra form fields, the answer expected at submit)
    uploads = {
        "empty": ("a.mp3", b"", {}, 400),
        "one byte": ("a.mp3", b"\x00", {}, 415),
        "text as mp3": ("notes.mp3", text, {}, 415),
        "text as wav": ("notes.wav", text, {}, 415),
        "header-only wav": ("h.wav", wav_bytes(np.zeros(0, np.float32)), {}, 415),
        "impossible wav": ("bad.wav", impossible_wav(), {}, 415),
        "video without audio": ("clip.mp4", silent_video, {}, 415),
        "beam_size -1": ("jfk.flac", jfk, {"beam_size": "-1"}, 422),
        "language xx": ("jfk.flac", jfk, {"language": "xx"}, 422),
        "temperature hot": ("jfk.flac", jfk, {"temperature": "hot"}, 422),
        "truncated mp3": ("cut.mp3", mp3[: len(mp3) // 5], {}, 202),
        "truncated flac": ("cut.flac", jfk[: len(jfk) // 3], {}, 202),
        "ten minutes of silence": (
            "silence.wav",
            wav_bytes(np.zeros(SR * 600, np.float32)),
            {},
            202,
        ),
        "pure noise": ("noise.wav", wav_bytes(noise), {}, 202),
        "video with audio": ("talk.mp4", make_video(tmp_path / "va.mp4").read_bytes(), {}, 202),
        "unknown extra fields": ("jfk.flac", jfk, {"colour": "blue", "model_x": "1"}, 202),
        "traversal name": ("../../etc/passwd.flac", jfk, {}, 202),
        "1000-char name": ("n" * 1000 + ".flac", jfk, {}, 202),
    }
    answers = {}
    for case, (name, content, fields, expected) in uploads.items():
        response = client.post("/api/v1/asr/submit", files={"audio": (name, content)},
                               data=fields)  # fmt: skip
        assert response.status_code == expected, (case, response.status_code, response.text)
        assert response.json()["error" if response.status_code >= 400 else "status"], case
        answers[case] = response.json()

    raw_cases = {
        "wrong content type": multipart(b"jfk.flac", jfk, b"text/plain"),
        "NUL in name": multipart(b"a\x00b.flac", jfk),
        "invalid UTF-8 name": multipart(b"\xff\xfe\xfa.flac", jfk),
    }
    for case, (body, headers) in raw_cases.items():
        response = client.post("/api/v1/asr/submit", content=body, headers=headers)
        assert response.status_code == 202, (case, response.text)
        answers[case] = response.json()
    missing = client.post("/api/v1/asr/submit", data={"language": "en"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "audio"]

    run_worker()

    accepted = {case: a["task_id"] for case, a in answers.items() if "task_id" in a}
    final = {case: result(client, task_id) for case, task_id in accepted.items()}
    assert all(t["status"] in ("done", "failed") for t in final.values()), final
    assert all(t["error"] for t in final.values() if t["status"] == "failed")
    assert final["ten minutes of silence"]["status"] == "done"
    assert final["ten minutes of silence"]["text"] == ""
    assert abs(final["ten minutes of silence"]["duration"] - 600) < 1
    assert final["pure noise"]["status"] == "done"
    assert len(final["pure noise"]["text"].split()) <= 3
    assert JFK_LINE in normalize(final["video with audio"]["text"])
    for case in ("wrong content type", "unknown extra fields", "traversal name"):
        assert JFK_LINE in normalize(final[case]["text"]), case

    with session_scope(settings.DATABASE_URL) as session:
        rows = session.execute(select(Task.filename, Task.audio_key)).all()
    stored = {path.name for path in settings.recordings_path.iterdir()}
    for filename, key in rows:
        assert "/" not in filename and "\x00" not in filename and len(filename) <= 255
        assert key in stored and ".." not in key
    assert final["traversal name"]["filename"] == "passwd.flac"
    assert client.get("/health").status_code in (200, 503)  # still serving
