"""Probing an upload with PyAV: is there an audio stream we can decode, in what container,
and how long is it. Only the container's headers and the first audio frame are read."""

from dataclasses import dataclass
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


class ProbeError(Exception):
    """The upload is not audio we can decode; the message says why."""


@dataclass(frozen=True)
class MediaInfo:
    container: str
    extension: str
    content_type: str
    codec: str
    duration_seconds: float | None
    has_video: bool


def probe(stream: BinaryIO) -> MediaInfo:
    """Read `stream` far enough to know it decodes; rewinds it afterwards."""
    stream.seek(0)
    try:
        with av.open(
            stream, mode="r", metadata_errors="ignore", options=NO_NESTED_PROTOCOLS
        ) as container:
            info = _describe(container)
    except (av.error.FFmpegError, OSError) as exc:
        raise ProbeError(f"not a recognised audio or video file ({_reason(exc)})") from None
    finally:
        stream.seek(0)
    return info


def _describe(container: av.container.InputContainer) -> MediaInfo:
    if not container.streams.audio:
        raise ProbeError(f"the {container.format.name} file has no audio track")
    audio = container.streams.audio[0]
    if not _decodes_a_frame(container, audio):
        raise ProbeError(f"the {audio.codec_context.name} audio track has no decodable frames")
    has_video = any(s.type == "video" for s in container.streams)
    extension, content_type = _file_type(container, has_video)
    return MediaInfo(
        container=container.format.name,
        extension=extension,
        content_type=content_type,
        codec=audio.codec_context.name,
        duration_seconds=_duration(container, audio),
        has_video=has_video,
    )


def _decodes_a_frame(container: av.container.InputContainer, audio: av.AudioStream) -> bool:
    for count, packet in enumerate(container.demux(audio)):
        if count >= MAX_PROBE_PACKETS:
            return False
        try:
            if packet.decode():
                return True
        except av.error.InvalidDataError:
            continue  # a damaged first packet is common in cut recordings; try the next
    return False


def _duration(container: av.container.InputContainer, audio: av.AudioStream) -> float | None:
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
