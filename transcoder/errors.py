"""The transcoder's error base: each error carries its HTTP status; one handler renders them."""

from typing import ClassVar


class TranscodeError(Exception):
    """A failure the client is told about as ``application/problem+json``."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Transcoding failed"
    slug: ClassVar[str] = "transcode-failed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotAWav(TranscodeError):
    """No RIFF/RF64 … WAVE magic: whatever this is, it is not a WAV file."""

    status = 415
    title = "Not a WAV file"
    slug = "not-a-wav"


class UnusableAudio(TranscodeError):
    """A WAV header is there, but the audio cannot become an MP3 (format, corruption, emptiness)."""

    status = 422
    title = "Unusable audio"
    slug = "unusable-audio"


class AudioTooLong(UnusableAudio):
    title = "Audio too long"
    slug = "audio-too-long"


class TranscodeTimeout(TranscodeError):
    status = 504
    title = "Transcoding timed out"
    slug = "transcode-timeout"


class EncoderUnavailable(TranscodeError):
    """The encoder itself could not be run: a deployment problem, never the input's fault."""

    status = 500
    title = "Encoder unavailable"
    slug = "encoder-unavailable"
