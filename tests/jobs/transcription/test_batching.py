"""Cross-job batching with the real model: the same texts as one at a time, each task its own
outcome, and a failing clip failing alone."""

import io
import uuid
from datetime import UTC, datetime, timedelta

import jiwer
import numpy as np
import pytest
from faster_whisper import decode_audio

from app.config import Settings
from jobs.queues import WorkerInfo, write_worker_heartbeat
from jobs.transcription import batching, engine
from jobs.upkeep.reconciler import reconcile
from models import Task, TaskStatus
from models.db import session_scope
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize, wav_buffer
from tests.utils.logs import logged
from tests.utils.records import history_lines, task_row

SR = 16000


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> engine.LoadedModel:
    storage = tmp_path_factory.mktemp("models")
    return engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=storage))


def shared_clips() -> dict[str, np.ndarray]:
    """Every shared recording, the English half of multilingual.mp3 standing for the file, as
    the worker reads it back from a stored 16-bit WAV: the one-at-a-time path below reads the
    same WAV, so both see the very same samples (a hard clip's wording can hang on the last
    bit of a sample)."""
    clips = {name: decode_audio(str(audio_file(name))) for name in
             ("jfk.flac", "stereo_diarization.wav", "hotwords.mp3")}  # fmt: skip
    clips["multilingual_en"] = decode_audio(str(audio_file("multilingual.mp3")))[: 30 * SR]
    return {name: decode_audio(wav_buffer(samples)) for name, samples in clips.items()}


def one_at_a_time(model: engine.LoadedModel, wav: io.BytesIO) -> str:
    """What the single-task path stores for this stored WAV."""
    wav.seek(0)
    return engine.transcribe(model, wav, engine.TranscriptionOptions(), lambda c, t: None).text


@pytest.mark.parametrize("pack", [False, True], ids=["windows", "packed"])
def test_a_batch_gives_the_same_texts_as_one_at_a_time(model, pack: bool):
    wavs = {name: wav_buffer(samples) for name, samples in shared_clips().items()}
    clips = {name: decode_audio(wav) for name, wav in wavs.items()}
    names = list(clips) * 2  # twice each: packing pairs clips up
    samples = [clips[name] for name in names]
    stats = batching.BatchStats()
    covered: list[float] = []
    batched = batching.transcribe_clips(
        model, samples, engine.TranscriptionOptions(), batch_size=8, pack=pack,
        on_step=covered.append, stats=stats,
    )  # fmt: skip
    alone = {name: one_at_a_time(model, wav) for name, wav in wavs.items()}
    for name, transcript in zip(names, batched, strict=True):
        if pack and name in ("stereo_diarization.wav", "hotwords.mp3"):
            # A packed window is a different input to Whisper than the clip alone: tiny.en
            # hears a few words of these two hard clips differently ("comfyu eye"), which is
            # why packing is off by default. The speech is still all there.
            assert jiwer.wer(normalize(alone[name]), normalize(transcript.text)) < 0.3, name
        else:
            assert normalize(transcript.text) == normalize(alone[name]), name
        assert transcript.language == "en"
        assert transcript.duration == round(len(clips[name]) / SR, 3)
        assert transcript.segments and all(
            0 <= s["start"] <= s["end"] <= transcript.duration for s in transcript.segments
        )
    assert JFK_LINE in normalize(batched[0].text)
    assert stats.streams < len(names) if pack else stats.streams == len(names)
    assert stats.steps < len(names)  # batched: fewer steps than clips
    assert covered == sorted(covered) and covered[-1] == pytest.approx(1.0)


def test_silence_in_a_batch_gets_empty_text_and_speech_its_own(model):
    silence = np.zeros(5 * SR, dtype=np.float32)
    jfk = decode_audio(str(audio_file("jfk.flac")))
    silent, speech = batching.transcribe_clips(
        model, [silence, jfk], engine.TranscriptionOptions(), batch_size=4, pack=True
    )
    assert silent.text == "" and silent.segments == [] and silent.language is None
    assert JFK_LINE in normalize(speech.text)


def test_quiet_speech_in_a_batch_is_heard(model):
    """jfk.flac turned down 60 dB, stored as 16-bit: the batch's speech check hears it as
    the single-task gate does, and Whisper transcribes the quiet samples themselves."""
    quiet = decode_audio(wav_buffer(decode_audio(str(audio_file("jfk.flac"))) * 10 ** (-60 / 20)))
    silence = np.zeros(5 * SR, dtype=np.float32)
    heard, silent = batching.transcribe_clips(
        model, [quiet, silence], engine.TranscriptionOptions(), batch_size=4, pack=False
    )
    assert JFK_LINE in normalize(heard.text) and heard.language == "en"
    assert silent.text == "" and silent.language is None


def test_the_packing_check_sends_a_clip_back_when_segments_straddle(model):
    stream = batching.Stream(
        clips=[0, 1], spans=[(0.0, 5.0), (7.0, 12.0)], features=np.zeros((80, 10)),
        tokenizer=None, condition_on_previous_text=False,  # type: ignore[arg-type]
        segments=[{"start": 0.0, "end": 4.8, "text": " one two three four"},
                  {"start": 3.0, "end": 11.0, "text": " five six seven eight nine"}],
    )  # fmt: skip
    clip = batching.Clip(np.zeros(5 * SR, dtype=np.float32), 4.0, "en", 1.0)
    assigned, failed = batching.assign_segments(stream, [clip, clip])
    assert failed == [0, 1]  # the second segment holds 2 s of one clip and 4 s of the other

    stream.segments[1] = {"start": 7.4, "end": 11.0, "text": " five six seven eight nine"}
    assigned, failed = batching.assign_segments(stream, [clip, clip])
    assert failed == []
    (moved,) = assigned[1]
    assert (moved["start"], moved["end"]) == (pytest.approx(0.4), 4.0)


def test_queued_short_tasks_are_transcribed_in_one_batch_and_a_bad_clip_fails_alone(
    client, run_worker, settings: Settings
):
    names = ["jfk.flac", "stereo_diarization.wav", "hotwords.mp3", "jfk.flac", "bad.flac"]
    ids = [
        submit(client, audio_file("jfk.flac" if name == "bad.flac" else name), name).json()[
            "task_id"
        ]
        for name in names
    ]
    # The upload was a real FLAC; what the worker finds in storage is not.
    (stored,) = settings.recordings_path.glob(f"*{ids[-1]}*")
    stored.write_bytes(b"fLaC" + bytes(4000))

    with logged() as messages:
        run_worker()
    log = "\n".join(messages)
    assert "batch of 5" in log, log[-3000:]
    bodies = [result(client, task_id) for task_id in ids]
    assert [b["status"] for b in bodies] == ["done"] * 4 + ["failed"]
    assert JFK_LINE in normalize(bodies[0]["text"]) and JFK_LINE in normalize(bodies[3]["text"])
    assert "curtain" in normalize(bodies[1]["text"])
    assert "comfy" in normalize(bodies[2]["text"]).replace(" ", "")
    assert bodies[4]["error"].startswith("could not decode audio"), bodies[4]
    assert all(b["language"] == "en" and b["segments"] for b in bodies[:4])
    with session_scope(settings.DATABASE_URL) as session:
        rows = [session.get(Task, uuid.UUID(task_id)) for task_id in ids]
        assert len({row.worker_name for row in rows}) == 1  # type: ignore[union-attr]
        assert all(row.attempts == 1 and row.processing_seconds for row in rows)  # type: ignore[union-attr]
        assert [row.progress for row in rows[:4]] == [100] * 4  # type: ignore[union-attr]
    lines = history_lines(settings)
    assert sorted(line["task_id"] for line in lines) == sorted(ids)  # one line per task


def test_each_task_of_a_batch_is_done_as_soon_as_its_own_clip_is(
    client, run_worker, settings: Settings, tmp_path
):
    """A silent clip has nothing to decode: its task is done (and announced) before the
    speech clips of its batch are, though it was claimed last."""
    speech = [submit(client, audio_file(name)).json()["task_id"]
              for name in ("jfk.flac", "stereo_diarization.wav", "jfk.flac")]  # fmt: skip
    silence = tmp_path / "silence.wav"
    silence.write_bytes(wav_buffer(np.zeros(5 * SR, dtype=np.float32)).getvalue())
    silent = submit(client, silence).json()["task_id"]

    with logged() as messages:
        run_worker()
    assert "batch of 4" in "\n".join(messages)
    rows = {task_id: task_row(settings, task_id) for task_id in [*speech, silent]}
    assert all(row.status == TaskStatus.DONE for row in rows.values())
    assert rows[silent].text == ""
    assert rows[silent].finished_at < min(rows[t].finished_at for t in speech)  # type: ignore[operator]
    ended = [line["task_id"] for line in history_lines(settings)]
    assert ended[0] == silent


def test_tasks_with_other_options_or_long_files_are_not_batched_with_them(
    client, run_worker, settings: Settings
):
    short = [submit(client, audio_file("jfk.flac")).json()["task_id"] for _ in range(2)]
    words = submit(client, audio_file("jfk.flac"), word_timestamps="true").json()["task_id"]
    long = submit(client, audio_file("multilingual.mp3")).json()["task_id"]

    with logged() as messages:
        run_worker()
    log = "\n".join(messages)
    assert "batch of 2" in log and "batch of 3" not in log, log[-3000:]
    assert result(client, words)["segments"][0]["words"]
    assert result(client, long)["status"] == "done"
    assert all(JFK_LINE in normalize(result(client, t)["text"]) for t in short)


def test_the_reconciler_leaves_a_batch_member_of_a_live_worker_alone(client, redis, settings):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    with session_scope(settings.DATABASE_URL) as session:
        task = session.get(Task, uuid.UUID(task_id))
        task.status, task.worker_name = TaskStatus.PROCESSING, "host.1"  # type: ignore[union-attr]
        # Started well before the reconciler's grace: only the heartbeat can keep it.
        task.started_at = datetime.now(UTC) - timedelta(minutes=4)  # type: ignore[union-attr]
    info = WorkerInfo(
        name="host.1", queues=[settings.QUEUE_NAME], model="tiny.en", device="cpu",
        compute_type="int8", state="busy", current_task=str(uuid.uuid4()), load=0.0,
        rss_mb=0.0, pid=1, hostname="host", started_at="", last_seen="", tasks=[task_id],
    )  # fmt: skip
    write_worker_heartbeat(redis, info, ttl_seconds=30)
    report = reconcile(settings, redis)
    assert uuid.UUID(task_id) not in report.recovered
    assert result(client, task_id)["status"] == "processing"
