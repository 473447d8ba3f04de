"""Probing an upload with PyAV: is there an audio stream we can decode, in what container,
and how long is it. One audio frame is decoded; the rest is only demuxed, to measure it.

A header's duration is whatever the writer put there: missing from a WebM written to a pipe,
or edited to say 10 s over hours of audio. The length is taken from the audio packets'
timestamps instead (FFmpeg reads them without decoding: ~2 µs a packet), and the header is
used only where the packets carry none. The worker counts decoded seconds as well
(jobs/transcription/audio_stream.py), since timestamps can be edited too.

PCM in WAV and its kin is measured by its bytes instead: there the audio is the bytes, so the
file's size bounds the length, and FFmpeg reads no further than the data chunk the header
declares. Walking the packets of a minute of WAV took 5-7 ms, most of a submit's time.
"""

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av

ACCEPTED_FORMATS = (
    "audio or video with an audio track that FFmpeg decodes, e.g. mp3, wav, flac, "
    "ogg/opus (voice notes), m4a/aac, webm, mp4, mkv, mov"
)
# A playlist or SDP file must not make FFmpeg open URLs or sockets on our behalf.
NO_NESTED_PROTOCOLS = {"protocol_whitelist": "file"}
# Decoding stops here if no audio frame came out: a file that yields nothing this far in is
# not audio we can transcribe.
MAX_PROBE_PACKETS = 200

# FFmpeg demuxer name -> (extension, content type). Unknown demuxers that still decode are
# kept as "bin" with a generic type rather than refused.
_CONTAINERS: dict[str, tuple[str, str]] = {
    "mp3": ("mp3", "audio/mpeg"),
    "flac": ("flac", "audio/flac"),
    "wav": ("wav", "audio/wav"),
    "w64": ("w64", "audio/wav"),
    "ogg": ("ogg", "audio/ogg"),
    "aac": ("aac", "audio/aac"),
    "aiff": ("aiff", "audio/aiff"),
    "amr": ("amr", "audio/amr"),
    "asf": ("wma", "audio/x-ms-wma"),
    "caf": ("caf", "audio/x-caf"),
    "avi": ("avi", "video/x-msvideo"),
    "mpeg": ("mpg", "video/mpeg"),
    "mpegts": ("ts", "video/mp2t"),
}
_WEBM_CODECS = {"opus", "vorbis", "vp8", "vp9", "av1"}
# Containers whose PCM audio is stored as plain bytes after a header, read by FFmpeg up to the
# end of the declared data chunk or of the file, whichever comes first.
_PCM_CONTAINERS = frozenset({"wav", "w64", "aiff", "caf", "au"})
# WAV and AIFF declare their streams in the header: FFmpeg need not read 5 MB of packets
# (its default probe) to learn them. Opening a minute of WAV took 2.8 ms with the default
# and 0.3 ms with this (the same codec and length for PCM, ADPCM, A-law and MP3 in WAV).
_HEADER_DECLARED = ((b"RIFF", b"WAVE"), (b"RF64", b"WAVE"), (b"FORM", b"AIFF"), (b"FORM", b"AIFC"))
SMALL_PROBE = {"probesize": "4096"}


class ProbeError(Exception):
    """The upload is not audio we can decode; the message says why."""


@dataclass(frozen=True)
class MediaInfo:
    container: str
    extension: str
    content_type: str
    codec: str
    # Measured; past max_seconds it is where measuring stopped, just beyond the limit.
    duration_seconds: float | None
    has_video: bool


def probe(stream: BinaryIO, max_seconds: float = 0) -> MediaInfo:
    """Check that `stream` decodes and measure its length, stopping once it is longer than
    `max_seconds` (0: no limit); rewinds it afterwards."""
    size = stream.seek(0, 2)
    stream.seek(0)
    head = stream.read(12)
    stream.seek(0)
    options = NO_NESTED_PROTOCOLS
    if (head[:4], head[8:12]) in _HEADER_DECLARED:
        options = {**NO_NESTED_PROTOCOLS, **SMALL_PROBE}
    try:
        with av.open(stream, mode="r", metadata_errors="ignore", options=options) as container:
            info = _describe(container, size, max_seconds)
    except (av.error.FFmpegError, OSError) as exc:
        raise ProbeError(f"not a recognised audio or video file ({_reason(exc)})") from None
    finally:
        stream.seek(0)
    return info


def _describe(container: av.container.InputContainer, size: int, max_seconds: float) -> MediaInfo:
    if not container.streams.audio:
        raise ProbeError(f"the {container.format.name} file has no audio track")
    audio = container.streams.audio[0]
    packets = container.demux(audio)
    probed: list[av.Packet] = []
    if not _decodes_a_frame(packets, probed):
        raise ProbeError(f"the {audio.codec_context.name} audio track has no decodable frames")
    measured = _pcm_seconds(container, audio, size)
    if measured is None and audio.time_base:
        rest = _until_unreadable(packets)
        measured = _timestamps_span(itertools.chain(probed, rest), audio.time_base, max_seconds)
    has_video = any(s.type == "video" for s in container.streams)
    extension, content_type = _file_type(container, has_video)
    return MediaInfo(
        container=container.format.name,
        extension=extension,
        content_type=content_type,
        codec=audio.codec_context.name,
        duration_seconds=measured if measured is not None else _header_duration(container, audio),
        has_video=has_video,
    )


def _decodes_a_frame(packets: Iterator[av.Packet], probed: list[av.Packet]) -> bool:
    """Whether one of the first packets decodes; those looked at are added to `probed`."""
    for count, packet in enumerate(packets):
        probed.append(packet)
        if count >= MAX_PROBE_PACKETS:
            return False
        try:
            if packet.decode():
                return True
        except av.error.InvalidDataError:
            continue  # a damaged first packet is common in cut recordings; try the next
    return False


def _until_unreadable(packets: Iterator[av.Packet]) -> Iterator[av.Packet]:
    """`packets` up to the first that FFmpeg cannot read: damage later in a file ends the
    measuring, not the upload (the worker transcribes as far as it decodes)."""
    try:
        yield from packets
    except av.error.FFmpegError:
        return


def _timestamps_span(
    packets: Iterable[av.Packet], time_base: Fraction, max_seconds: float
) -> float | None:
    """Seconds from the first packet's start to the last one's end; counting stops once the
    span passes `max_seconds` (0: no limit). None when no packet has a timestamp."""
    limit = max_seconds / time_base if max_seconds else math.inf
    first: int | None = None
    end: int | None = None
    for packet in packets:
        start = packet.pts
        if start is None:  # the demuxer's final flush packet, or a stream without timestamps
            continue
        first = start if first is None else min(first, start)
        stop = start + (packet.duration or 0)
        end = stop if end is None else max(end, stop)
        if end - first > limit:
            break
    if first is None or end is None:
        return None
    return round(float((end - first) * time_base), 3)


def _pcm_seconds(
    container: av.container.InputContainer, audio: av.AudioStream, size: int
) -> float | None:
    """The length of PCM audio stored as plain bytes, from the bytes there are: what the
    data chunk declares, but no more than the whole file holds. None for other audio."""
    bits_per_second = audio.codec_context.bit_rate
    if (
        container.format.name not in _PCM_CONTAINERS
        or not audio.codec_context.name.startswith("pcm_")
        or not bits_per_second
    ):
        return None
    held = size * 8 / bits_per_second  # the header's bytes too: a few ms at most
    if audio.duration and audio.time_base:
        return round(min(held, float(audio.duration * audio.time_base)), 3)
    return round(held, 3)


def _header_duration(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
    if container.duration:
        return round(container.duration / av.time_base, 3)
    if audio.duration and audio.time_base:
        return round(float(audio.duration * audio.time_base), 3)
    return None


def _file_type(container: av.container.InputContainer, has_video: bool) -> tuple[str, str]:
    name = container.format.name
    if name.startswith("mov,mp4"):
        return ("mp4", "video/mp4") if has_video else ("m4a", "audio/mp4")
    if name.startswith("matroska"):
        codecs = {s.codec_context.name for s in container.streams if s.codec_context}
        if codecs <= _WEBM_CODECS:
            return ("webm", "video/webm") if has_video else ("weba", "audio/webm")
        return ("mkv", "video/x-matroska") if has_video else ("mka", "audio/x-matroska")
    return _CONTAINERS.get(name, ("bin", "application/octet-stream"))


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)
