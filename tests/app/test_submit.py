"""Submit over HTTP -> a real RQ worker process with the real model -> poll the result."""

import re
import uuid

import av
import numpy as np
from sqlalchemy import select

from models import Task
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize, reencoded_as_wav
from tests.utils.records import history_lines

MIT_LICENSE_OPENING = "permission is hereby granted free of charge to any person obtaining a copy"


def test_jfk_flac_is_transcribed_end_to_end(client, run_worker, settings):
    jfk = audio_file("jfk.flac")
    response = submit(client, jfk)
    assert response.status_code == 202, response.text
    queued = response.json()
    task_id = queued["task_id"]
    assert queued["status"] == "queued"
    assert queued["position"] == 1
    assert queued["estimated_wait"] is None  # no worker alive yet
    assert queued["result_url"].endswith(f"/api/v1/asr/result/{task_id}")
    assert result(client, task_id)["status"] == "queued"
    assert result(client, task_id)["position"] == 1

    run_worker()

    done = result(client, task_id)
    assert done["status"] == "done", done
    assert JFK_LINE in normalize(done["text"])
    assert done["language"] == "en"
    assert abs(done["duration"] - 11.0) < 0.5
    assert done["segments"] and all(s["end"] > s["start"] for s in done["segments"])
    assert JFK_LINE in normalize(" ".join(s["text"] for s in done["segments"]))
    assert done["timings"]["processing_seconds"] > 0 and done["timings"]["rtf"] > 0
    assert done["attempts"] == 1 and done["error"] is None and done["retry_url"] is None

    with session_scope(settings.DATABASE_URL) as session:
        row = session.scalars(select(Task).where(Task.id == uuid.UUID(task_id))).one()
        assert row.status == "done" and row.progress == 100
        assert row.text == done["text"]
        assert row.filename == "jfk.flac" and row.content_type == "audio/flac"
        assert row.size_bytes == jfk.stat().st_size
        assert row.worker_name and row.model == "tiny.en" and row.beam_size == 5
        assert re.fullmatch(rf"\d{{4}}-\d\d-\d\d_\d{{6}}_{task_id}\.flac", row.audio_key)
        stored = settings.recordings_path / row.audio_key
        assert stored.read_bytes() == jfk.read_bytes()

    audio = client.get(done["audio_url"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/flac"
    assert audio.content == jfk.read_bytes()

    [line] = history_lines(settings)
    assert line["task_id"] == task_id and line["status"] == "done"
    assert line["file"] == "jfk.flac" and line["model"] == "tiny.en"
    assert JFK_LINE in normalize(line["text"]) and line["error"] is None
    assert abs(line["duration"] - 11.0) < 0.5 and line["worker"] == row.worker_name


def test_flac_mp3_and_wav_all_transcribe(client, run_worker_subprocess, tmp_path):
    wav = tmp_path / "jfk.wav"
    reencoded_as_wav(audio_file("jfk.flac"), wav)
    uploads = {
        "flac": audio_file("jfk.flac"),
        "wav": wav,
        "mp3": audio_file("hotwords.mp3"),
    }
    task_ids = {kind: submit(client, path).json()["task_id"] for kind, path in uploads.items()}

    worker = run_worker_subprocess()

    results = {kind: result(client, task_id) for kind, task_id in task_ids.items()}
    assert {r["status"] for r in results.values()} == {"done"}, results
    # One process, one model load, three jobs: no fork and no reload per job.
    assert worker.stderr.count("model tiny.en loaded") == 1
    assert JFK_LINE in normalize(results["flac"]["text"])
    assert JFK_LINE in normalize(results["wav"]["text"])
    assert "comfy" in normalize(results["mp3"]["text"])
    assert abs(results["mp3"]["duration"] - 4.0) < 0.5


def test_multilingual_mp3_yields_its_english_part(client, run_worker):
    task_id = submit(client, audio_file("multilingual.mp3")).json()["task_id"]
    run_worker()
    done = result(client, task_id)
    assert done["status"] == "done", done
    assert MIT_LICENSE_OPENING in normalize(done["text"])
    assert abs(done["duration"] - 59.9) < 1


def test_options_are_stored_and_echoed(client, run_worker):
    response = submit(
        client, audio_file("jfk.flac"), language="EN", beam_size="2",
        word_timestamps="true", initial_prompt="Kennedy inaugural address",
    )  # fmt: skip
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    run_worker()
    done = result(client, task_id)
    assert done["options"]["language"] == "en" and done["options"]["beam_size"] == 2
    assert done["options"]["word_timestamps"] is True
    words = [w for s in done["segments"] for w in s["words"]]
    assert "Americans" in "".join(w["word"] for w in words)
    assert all(0 <= w["probability"] <= 1 and w["end"] >= w["start"] for w in words)


def test_silence_transcribes_to_empty_text(client, run_worker, tmp_path):
    silence = tmp_path / "silence.wav"
    with av.open(str(silence), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000 * 3), np.int16), "s16", "mono")
        frame.sample_rate = 16000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    task_id = submit(client, silence).json()["task_id"]
    run_worker()
    done = result(client, task_id)
    assert done["status"] == "done"
    assert abs(done["duration"] - 3.0) < 0.1
    assert done["text"] == "" and done["language"] is None


def test_speech_turned_down_60_db_is_transcribed(client, run_worker, tmp_path):
    """Quiet is not silent: the speech gate hears a level-raised copy, Whisper the file."""
    from tests.utils.audio import decoded, write_wav

    quiet = tmp_path / "quiet.wav"
    write_wav(quiet, decoded("jfk.flac") * 10 ** (-60 / 20))
    task_id = submit(client, quiet).json()["task_id"]
    run_worker()
    done = result(client, task_id)
    assert done["status"] == "done" and JFK_LINE in normalize(done["text"])
    assert done["language"] == "en"
