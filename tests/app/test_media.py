"""Probing uploads (app/media.py): PCM in WAV and AIFF is measured by the bytes the file
holds, without walking its packets, and a header that misstates them is not believed."""

import io
import struct

import av
import numpy as np
import pytest

from app import media
from app.media import probe
from tests.utils.audio import encoded_tone, wav_bytes

SR = 16000
BYTES_PER_SECOND = SR * 2  # 16-bit mono


def with_data_size(wav: bytes, declared: int) -> bytes:
    """`wav` with its data chunk's size field set to `declared`."""
    at = wav.index(b"data") + 4
    return wav[:at] + struct.pack("<I", declared) + wav[at + 4 :]


def silence(seconds: float) -> bytes:
    return wav_bytes(np.zeros(int(seconds * SR), np.float32))


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / SR


WAVS = {  # name: (file, seconds FFmpeg decodes from it)
    "honest": (silence(40), 40.0),
    "data chunk claims 10 min": (with_data_size(silence(40), 600 * BYTES_PER_SECOND), 40.0),
    "data chunk claims 3 s": (with_data_size(silence(40), 3 * BYTES_PER_SECOND), 3.0),
    "streamed (size unknown)": (with_data_size(silence(40), 0xFFFFFFFF), 40.0),
    "cut short": (silence(40)[: 44 + 5 * BYTES_PER_SECOND], 5.0),
}


@pytest.mark.parametrize("name", WAVS)
def test_a_wav_is_measured_as_long_as_it_decodes_whatever_its_header_says(name: str):
    data, seconds = WAVS[name]
    assert decoded_seconds(data) == pytest.approx(seconds, abs=0.01)  # what the worker gets
    info = probe(io.BytesIO(data))
    assert info.duration_seconds == pytest.approx(seconds, abs=0.01)
    assert (info.container, info.extension, info.codec) == ("wav", "wav", "pcm_s16le")


def test_an_aiff_is_measured_by_its_bytes_too():
    info = probe(io.BytesIO(encoded_tone("pcm_s16be", "aiff")))
    assert info.container == "aiff" and info.duration_seconds == pytest.approx(20, abs=0.01)


@pytest.mark.parametrize(
    ("codec", "container", "layout"),
    [("pcm_s16le", "wav", "mono"), ("pcm_s24le", "wav", "stereo"), ("pcm_f32le", "wav", "mono"),
     ("adpcm_ms", "wav", "mono"), ("adpcm_ima_wav", "wav", "stereo"), ("pcm_alaw", "wav", "mono"),
     ("libmp3lame", "wav", "mono"), ("pcm_s16be", "aiff", "stereo")],
)  # fmt: skip
def test_a_small_probe_of_a_wav_or_aiff_finds_what_ffmpegs_full_probe_does(
    codec: str, container: str, layout: str, monkeypatch: pytest.MonkeyPatch
):
    """WAV and AIFF are opened with a 4 KB stream probe (app/media.SMALL_PROBE), not 5 MB."""
    data = encoded_tone(codec, container, layout)
    small = probe(io.BytesIO(data))
    monkeypatch.setitem(media.SMALL_PROBE, "probesize", "5000000")  # FFmpeg's default
    assert small == probe(io.BytesIO(data))
    assert small.duration_seconds == pytest.approx(20, abs=0.2)


def test_a_wav_is_opened_with_the_small_probe():
    reader = CountingReader(silence(600))
    probe(reader)
    assert reader.bytes_read < 128 * 1024, reader.bytes_read  # 5 MB probe: ~200 KB


class CountingReader(io.BytesIO):
    """Counts the bytes read through it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_probing_a_long_wav_reads_its_start_not_all_of_it():
    """Walking a WAV's packets cost 5-7 ms a minute of audio at every submit; its length
    is in the bytes there are, so most of the file is never read."""
    ten_minutes = silence(600)  # 19 MB
    reader = CountingReader(ten_minutes)
    assert probe(reader).duration_seconds == pytest.approx(600, abs=0.01)
    assert reader.bytes_read < len(ten_minutes) // 20, reader.bytes_read
