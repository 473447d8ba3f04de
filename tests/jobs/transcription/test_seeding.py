"""Where decoding samples (faster-whisper's temperature fallback), it samples from the task's
own seed: the same task run again with the same options gives the same text, in a batch or
alone."""

import uuid

import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer

from app.config import Settings
from jobs.transcription import engine, seeding
from tests.utils.api import result, submit
from tests.utils.audio import JFK_LINE, audio_file, normalize, scrambled_speech, write_wav
from tests.utils.logs import logged


def test_a_task_that_samples_gets_the_same_text_when_run_again(
    client, run_worker, tmp_path, settings
):
    """First in a batch, which hands the clip to the single path once it needs temperature
    fallback; then retried, alone."""
    path = tmp_path / "scrambled.wav"
    write_wav(path, scrambled_speech())
    hard = submit(client, path).json()["task_id"]
    easy = submit(client, audio_file("jfk.flac")).json()["task_id"]
    sampling = f"sampling from seed {seeding.task_seed(settings, uuid.UUID(hard))} "
    texts = []
    for run in ("in a batch", "alone"):
        if run == "alone":
            assert client.post(f"/api/v1/asr/retry/{hard}?force=true").status_code == 202
        with logged() as messages:
            run_worker()
        log = "\n".join(messages)
        assert sampling in log, "the clip no longer needs temperature fallback"
        if run == "in a batch":
            assert "batch of 2: 1 clips done together" in log and "1 one at a time" in log, log
            assert JFK_LINE in normalize(result(client, easy)["text"])
        texts.append(result(client, hard)["text"])
    assert texts[0] == texts[1] and texts[0]


def test_a_seed_repeats_its_samples_after_the_model_has_sampled_before(settings: Settings):
    """CTranslate2 seeds a thread's generator once, at its first sample: setting the seed
    again would change nothing for a model already in use, so each seeded block samples on
    a fresh copy. Five free samples at temperature 1 never repeat by chance."""
    model = engine.get_model(settings)
    whisper = model.whisper
    noise = np.random.default_rng(0).standard_normal(10 * 16000).astype(np.float32) * 0.1
    encoded = whisper.encode(pad_or_trim(whisper.feature_extractor(noise))[np.newaxis])
    tokenizer = Tokenizer(whisper.hf_tokenizer, False, task="transcribe", language="en")
    prompt = whisper.get_prompt(tokenizer, [], without_timestamps=False)

    def sampled(seed: int | None) -> list[list[int]]:
        with seeding.seeded(whisper, seed, model.sampling_copy):
            (result,) = whisper.model.generate(
                encoded, [prompt], beam_size=1, num_hypotheses=5, sampling_topk=0,
                sampling_temperature=1.0, max_length=60,
            )  # fmt: skip
        return result.sequences_ids

    sampled(None)  # the model's own generator is in use from here on
    assert sampled(7) == sampled(7) != sampled(8)


def test_seeded_sampling_can_be_turned_off(settings):
    task_id = uuid.uuid4()
    assert seeding.task_seed(settings, task_id) == int.from_bytes(task_id.bytes[:4], "big")
    off = settings.model_copy(update={"SEEDED_SAMPLING": False})
    assert seeding.task_seed(off, task_id) is None
