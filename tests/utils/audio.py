"""The shared recordings (../shared/audio), their reference texts, and recordings made from
them or from scratch at test time."""

import io
import os
import re
import wave
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.utils.paths import ROOT

SAMPLE_RATE = 16000
# ../shared/audio beside the checkout (CI has it too); SHARED_AUDIO_PATH overrides.
AUDIO = Path(os.environ.get("SHARED_AUDIO_PATH", ROOT.parent / "shared" / "audio"))
JFK_LINE = "ask not what your country can do for you"
# The reference text of the English half (0-30 s) of multilingual.mp3 (../shared/audio/README).
ENGLISH_HALF_TEXT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this "
    "software and associated documentation files (the Software), to deal in the Software "
    "without restriction, including without limitation the rights to use, copy, modify, merge, "
    "publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons "
    "to whom the Software is furnished to do so, subject to the following conditions: The above "
    "copyright notice and this permission notice shall be included in all copies or "
    "substantial portions of the Software."
)
MIT_LICENSE_OPENING = "permission is hereby granted free of charge to any person obtaining a copy"


def audio_file(name: str) -> Path:
    path = AUDIO / name
    if not path.is_file():
        pytest.fail(f"shared test audio missing: {path} (set SHARED_AUDIO_PATH)")
    return path


def normalize(text: str) -> str:
    """Lower case, punctuation removed, single spaces: for comparing transcripts."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def decoded(name: str) -> Any:
    """A shared recording as 16 kHz mono float samples."""
    from faster_whisper import decode_audio

    return decode_audio(str(audio_file(name)))


def write_wav(target: Path | BinaryIO, samples: Any) -> None:
    """16 kHz mono 16-bit WAV of float samples, to a path or an open binary file."""
    import numpy as np

    with wave.open(target if not isinstance(target, Path) else str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def wav_buffer(samples: Any) -> io.BytesIO:
    """The WAV of `write_wav` in memory, positioned at its start."""
    buffer = io.BytesIO()
    write_wav(buffer, samples)
    buffer.seek(0)
    return buffer


def wav_bytes(samples: Any) -> bytes:
    return wav_buffer(samples).getvalue()


def english_speech() -> Any:
    """50 s of varied English speech: the English half of multilingual.mp3, jfk.flac,
    stereo_diarization.wav and hotwords.mp3, one after the other."""
    import numpy as np

    names = ("multilingual.mp3", "jfk.flac", "stereo_diarization.wav", "hotwords.mp3")
    parts = [decoded(name) for name in names]
    parts[0] = parts[0][: 30 * SAMPLE_RATE]  # its English half
    return np.concatenate(parts)


def scrambled_speech() -> Any:
    """The first 6 s of jfk.flac cut into 12 pieces and shuffled: speech to the speech gate,
    but text tiny.en is unsure of, so faster-whisper falls back to sampling (~2 s a run)."""
    import numpy as np

    pieces = np.array_split(decoded("jfk.flac")[: 6 * SAMPLE_RATE], 12)
    order = np.random.default_rng(0).permutation(len(pieces))
    return np.concatenate([pieces[n] for n in order])


def long_recording(
    target: Path, repeats: int = 5, source_name: str | None = None, seconds: float = 0
) -> Path:
    """A WAV of `english_speech()` (or of `source_name`, its first `seconds` if given)
    repeated `repeats` times: 5 x 50 s of speech by default, which the English-only model
    reads at a steady pace (a clip repeated back to back would not do: text repeated within
    a 30-s window makes Whisper decode again at higher temperatures, slowly and unevenly)."""
    import numpy as np

    source = decoded(source_name) if source_name else english_speech()
    write_wav(target, np.tile(source[: int(seconds * SAMPLE_RATE)] if seconds else source, repeats))
    return target


def reencoded_as_wav(source: Path, target: Path) -> Path:
    """`source` decoded and written again as 16-bit PCM WAV with PyAV."""
    import av

    with av.open(str(source)) as inp, av.open(str(target), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        for frame in inp.decode(audio=0):
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return target


def german_half(target: Path) -> Path:
    """The German half (30-60 s) of multilingual.mp3 as a WAV, for the multilingual model."""
    write_wav(target, decoded("multilingual.mp3")[30 * SAMPLE_RATE :])
    return target


def make_video(
    path: Path, container: str = "mp4", video_codec: str = "mpeg4", audio_codec: str | None = "aac"
) -> Path:
    """A small video of black frames with jfk.flac as its audio track (11 s), muxed here with
    PyAV; `audio_codec=None`: 2 s of frames and no audio track at all."""
    import av
    import numpy as np

    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream(video_codec, rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = None
        if audio_codec:  # every stream is added before the first packet is written
            rate = 48000 if audio_codec == "libopus" else SAMPLE_RATE
            audio = out.add_stream(audio_codec, rate=rate)
            audio.layout = "mono"
        for _ in range(110 if audio else 20):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        if audio is not None:
            pcm = av.AudioFrame.from_ndarray(
                (decoded("jfk.flac") * 32767).astype(np.int16).reshape(1, -1),
                format="s16", layout="mono",
            )  # fmt: skip
            pcm.sample_rate = SAMPLE_RATE
            resampler = av.AudioResampler(format=audio.codec_context.format.name, layout="mono",
                                          rate=audio.codec_context.sample_rate)  # fmt: skip
            for resampled in resampler.resample(pcm):
                out.mux(audio.encode(resampled))
            out.mux(audio.encode(None))
        out.mux(video.encode(None))
    return path


class _Pipe(io.RawIOBase):
    """A write-only, unseekable file: a muxer writing to it cannot go back to fill in headers."""

    def __init__(self) -> None:
        self.written = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.written += data
        return len(data)


def silent_webm(
    seconds: int, *, streamed: bool = False, header_seconds: float | None = None,
    timestamp_scale: float = 1.0,
) -> bytes:  # fmt: skip
    """`seconds` of silence as 6 kbit/s Opus in WebM (a browser voice note, ~0.6 kB/s; PyAV
    encodes it at ~350x real time). `streamed`: written to a pipe, so the header has no
    Duration element; `header_seconds`: the Duration element edited to say this;
    `timestamp_scale`: every packet's timestamps multiplied by it (edited timestamps)."""
    import struct

    import av
    import numpy as np

    target: Any = _Pipe() if streamed else io.BytesIO()
    with av.open(target, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout, stream.bit_rate = "mono", 6000
        second = np.zeros((1, 48000), np.int16)
        frames = []
        for n in range(seconds):
            frame = av.AudioFrame.from_ndarray(second, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 48000, n * 48000
            frames.append(frame)
        for frame in [*frames, None]:
            for packet in stream.encode(frame):
                if timestamp_scale != 1.0 and packet.pts is not None:
                    packet.pts = packet.dts = int(packet.pts * timestamp_scale)
                    packet.duration = max(1, int((packet.duration or 0) * timestamp_scale))
                out.mux(packet)
    data = bytes(target.written) if streamed else target.getvalue()
    if header_seconds is not None:
        at = data.index(b"\x44\x89\x88")  # EBML Duration, an 8-byte float in milliseconds
        data = data[: at + 3] + struct.pack(">d", header_seconds * 1000) + data[at + 11 :]
    return data


def encoded_tone(codec: str, container: str, layout: str = "mono", seconds: int = 20) -> bytes:
    """`seconds` of a 16 kHz tone encoded with `codec` (an FFmpeg encoder) in `container`."""
    import av
    import numpy as np

    channels = 2 if layout == "stereo" else 1
    tone = (np.sin(np.arange(SAMPLE_RATE * seconds) / 10) * 8000).astype(np.int16)
    interleaved = np.repeat(tone, channels).reshape(1, -1)  # packed s16: one plane
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=SAMPLE_RATE, layout=layout)
        for start in range(0, len(tone), 1152):
            piece = interleaved[:, start * channels : (start + 1152) * channels]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), "s16", layout)
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
