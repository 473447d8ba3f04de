"""The cross-job batching part of scripts/bench.py: many short clips, one at a time with raw
faster-whisper against jobs/transcription/batching.py (a batch of windows, and packed windows), in one
process, then through the service with BATCH_MAX_JOBS=1 against the default.

Clips are 3-30 s, built from ../shared/audio: whole recordings (with their reference texts),
stretches of the English half of multilingual.mp3 cut at pauses, one to three of them per
clip with short pauses, random gain and a little noise (seeded: every run builds the same).
"""

import os
import random
import time
from pathlib import Path
from typing import Any

import httpx
import jiwer
import numpy as np

SR = 16000
BATCH = 8


def build_clips(audio: Path, references: dict[str, str | None], count: int) -> list[dict]:
    from faster_whisper import decode_audio
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    english = decode_audio(str(audio / "multilingual.mp3"))[: 30 * SR]
    sources: dict[str, tuple[np.ndarray, str | None]] = {
        "jfk": (decode_audio(str(audio / "jfk.flac")), references["jfk.flac"]),
        "stereo": (decode_audio(str(audio / "stereo_diarization.wav")),
                   references["stereo_diarization.wav"]),
        "hotwords": (decode_audio(str(audio / "hotwords.mp3")), None),
    }  # fmt: skip
    pauses = get_speech_timestamps(english, VadOptions(min_silence_duration_ms=250))
    for n in range(12):  # distinct stretches of 1-4 phrases, no reference text
        first, last = n % len(pauses), min(len(pauses), n % len(pauses) + 1 + n % 4)
        start, end = pauses[first]["start"] - SR // 10, pauses[last - 1]["end"] + SR // 10
        sources[f"english{n}"] = (english[max(0, start) : end], None)
    rng = random.Random(7)
    noise = np.random.default_rng(7)
    clips: list[dict] = []
    while len(clips) < count:
        parts, seconds = [], 0.0
        for _ in range(rng.choice([1, 1, 2, 3])):
            name = rng.choice(list(sources))
            if seconds + len(sources[name][0]) / SR + 0.8 > 30:
                break
            parts.append(name)
            seconds += len(sources[name][0]) / SR + 0.8
        if not parts:
            continue
        pieces = []
        for name in parts:
            pieces.append(np.zeros(int(rng.uniform(0.2, 0.8) * SR), np.float32))
            pieces.append(sources[name][0] * rng.uniform(0.5, 1.4))
        samples = np.concatenate(pieces)[: 30 * SR].astype(np.float32)
        samples += noise.normal(0, 0.003, len(samples)).astype(np.float32)
        refs = [sources[name][1] for name in parts]
        reference = " ".join(r for r in refs if r) if all(refs) else None
        if len(samples) >= 3 * SR:
            clips.append({"samples": samples, "reference": reference, "parts": parts})
    return clips


def scores(clips: list[dict], texts: list[str], baseline: list[str], normalize: Any) -> dict:
    with_reference = [(c["reference"], t) for c, t in zip(clips, texts, strict=True)
                      if c["reference"]]  # fmt: skip
    return {
        "wer": round(jiwer.wer([normalize(r) for r, _ in with_reference],
                               [normalize(t) or "_" for _, t in with_reference]), 4),
        "clips_with_reference": len(with_reference),
        "drift_from_one_at_a_time": round(jiwer.wer([normalize(b) or "_" for b in baseline],
                                                    [normalize(t) or "_" for t in texts]), 4),
        "clips_without_text": sum(1 for b, t in zip(baseline, texts, strict=True)
                                  if normalize(b) and not normalize(t)),
    }  # fmt: skip


def in_process(clips: list[dict], settings: Any, normalize: Any) -> dict:
    """Raw faster-whisper one at a time, then jobs/transcription/batching.py, same model, same process."""
    from jobs.transcription import batching, engine

    model = engine.load_model(settings)
    samples = [c["samples"] for c in clips]
    started = time.perf_counter()
    raw = []
    for clip in samples:
        segments, _ = model.whisper.transcribe(clip, beam_size=5)
        raw.append("".join(s.text for s in segments).strip())
    raw_seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "clips": len(clips), "audio_seconds": round(sum(len(s) for s in samples) / SR, 1),
        "batch_size": BATCH,
        "raw": {"wall_seconds": round(raw_seconds, 2), **scores(clips, raw, raw, normalize)},
    }  # fmt: skip
    for mode, pack in (("windows", False), ("packed", True)):
        stats = batching.BatchStats()
        started = time.perf_counter()
        transcripts = batching.transcribe_clips(
            model, samples, engine.TranscriptionOptions(), BATCH, pack, stats=stats
        )
        # A clip that needs temperature fallback leaves the batch for the single path, as
        # in the service; its time counts here.
        texts = [t.text if t is not None else alone(model, samples[n])
                 for n, t in enumerate(transcripts)]  # fmt: skip
        wall = time.perf_counter() - started
        result[mode] = {
            "wall_seconds": round(wall, 2), "speedup": round(raw_seconds / wall, 2),
            **scores(clips, texts, raw, normalize),
            "handed_off": sum(t is None for t in transcripts),
            "streams": stats.streams, "steps": stats.steps, "packed_clips": stats.packed_clips,
            "rechecked_clips": stats.rechecked_clips,
            "temperature_fallbacks": stats.temperature_fallbacks,
        }  # fmt: skip
    return result


def alone(model: Any, clip: np.ndarray) -> str:
    segments, _ = model.whisper.transcribe(clip, beam_size=5)
    return "".join(s.text for s in segments).strip()


def through_service(service: Any, clips: list[dict], work: Path, write_wav: Any) -> dict:
    """All clips queued first, then workers drain the queue: one worker with BATCH_MAX_JOBS=1
    against the default, and two workers sharing the CPU cores (each batching)."""
    paths = [write_wav(work / f"clip{n:03}.wav", c["samples"]) for n, c in enumerate(clips)]
    half_the_cores = str(max(1, (os.cpu_count() or 2) // 2))
    configurations = (
        ("one_at_a_time", 1, {"BATCH_MAX_JOBS": "1"}),
        ("batched", 1, {"BATCH_MAX_JOBS": str(BATCH)}),
        ("two_workers", 2, {"BATCH_MAX_JOBS": str(BATCH), "WHISPER_CPU_THREADS": half_the_cores}),
    )
    result: dict[str, Any] = {"threads_per_worker_of_two": int(half_the_cores)}
    for label, workers, env in configurations:
        service.stop_worker()
        with httpx.Client(timeout=60) as client:
            ids = []
            for path in paths:
                with path.open("rb") as audio:
                    answer = client.post(f"{service.url}/api/v1/asr/submit",
                                         files={"audio": (path.name, audio)})  # fmt: skip
                ids.append(answer.json()["task_id"])
            started = time.perf_counter()
            service.start_worker(workers, **env)
            pending = set(ids)
            while pending:
                for task_id in list(pending):
                    body = client.get(f"{service.url}/api/v1/asr/result/{task_id}").json()
                    if body["status"] in ("done", "failed"):
                        pending.discard(task_id)
                time.sleep(0.2)
            result[label] = {"wall_seconds": round(time.perf_counter() - started, 2)}
    service.stop_worker()
    for path in paths:
        path.unlink()
    for label in ("batched", "two_workers"):
        result[label]["speedup"] = round(
            result["one_at_a_time"]["wall_seconds"] / result[label]["wall_seconds"], 2
        )
    return result


def render(data: dict | None) -> str:
    if not data:
        return "Not measured in this run (`scripts/bench.py --only batching` measures it).\n"
    raw, win, pack = data["raw"], data["windows"], data["packed"]
    service = data.get("service")
    service_rows = (
        f"""
The same clips through the service (all submitted first, then the workers drain the queue):

| | wall | speed-up |
|---|---|---|
| one worker, `BATCH_MAX_JOBS=1` | {service["one_at_a_time"]["wall_seconds"]} s | 1× |
| one worker, `BATCH_MAX_JOBS={BATCH}` | {service["batched"]["wall_seconds"]} s | **{service["batched"]["speedup"]}×** |
| two workers, `WHISPER_CPU_THREADS={service["threads_per_worker_of_two"]}` each, `BATCH_MAX_JOBS={BATCH}` | {service["two_workers"]["wall_seconds"]} s | **{service["two_workers"]["speedup"]}×** |
"""
        if service
        else ""
    )
    return f"""{data["clips"]} clips of 3-30 s ({data["audio_seconds"]} s of audio, built from the
shared recordings: see `scripts/bench_batching.py`), batch size {data["batch_size"]}. WER is
measured on the {raw["clips_with_reference"]} clips that have reference texts; *drift* is the
WER of each mode's texts against the one-at-a-time texts, over all clips.

| | wall | speed-up | WER | drift | re-decoded alone |
|---|---|---|---|---|---|
| raw faster-whisper, one clip at a time | {raw["wall_seconds"]} s | 1× | {raw["wer"]} | 0 | |
| batch of windows (`BATCH_PACKING=false`, the default) | {win["wall_seconds"]} s | **{win["speedup"]}×** | {win["wer"]} | {win["drift_from_one_at_a_time"]} | 0 |
| packed windows (`BATCH_PACKING=true`) | {pack["wall_seconds"]} s | **{pack["speedup"]}×** | {pack["wer"]} | {pack["drift_from_one_at_a_time"]} | {pack["rechecked_clips"]} of {pack["packed_clips"]} packed clips |

Clips that lost all their text: windows {win["clips_without_text"]}, packed
{pack["clips_without_text"]}. Temperature fallbacks (windows decoded again at a higher
temperature, as faster-whisper does): windows {win["temperature_fallbacks"]}, packed
{pack["temperature_fallbacks"]}.
{service_rows}"""
