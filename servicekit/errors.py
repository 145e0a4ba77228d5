"""The error contract of both services, free of any web framework.

Every failure the API names is a ``ServiceError`` subclass: its status, its problem type (``slug``)
and its title, one title per type everywhere. ``servicekit.problems`` renders them as
problem+json; the gateway turns a transcoder's problem back into the same class with
``error_for_slug``, so a type reaches the client unchanged.
"""

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

PROBLEM_BASE = "https://riffle.dev/problems/"

_BY_SLUG: dict[str, type["ServiceError"]] = {}


class ServiceError(Exception):
    """A failure with a place in the API contract: its status, problem type and title."""

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The first class to name a slug owns it; subclasses that only specialise keep its type.
        _BY_SLUG.setdefault(cls.slug, cls)

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors) if errors is not None else None

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 document of this error (what the API answers, or a job records)."""
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def error_for_slug(slug: str) -> type[ServiceError] | None:
    """The class that owns problem type ``slug``, if any."""
    return _BY_SLUG.get(slug)


# --- the audio problems both services answer -----------------------------------------------------


class InvalidInput(ServiceError):
    status, slug, title = 422, "validation-error", "Request is not valid"


class NotAWav(ServiceError):
    """No RIFF/RF64 … WAVE magic: whatever this is, it is not a WAV file."""

    status, slug, title = 415, "not-a-wav", "The file is not a WAV file"


class UndecodableAudio(ServiceError):
    """A WAV header is there, but the audio cannot become an MP3 (format, corruption, emptiness)."""

    status, slug, title = 422, "undecodable-audio", "The WAV file cannot be converted"


class AudioTooLong(UndecodableAudio):
    slug, title = "audio-too-long", "The recording is too long"


class TranscodeTimeout(ServiceError):
    status, slug, title = 504, "transcode-timeout", "Transcoding took too long"


_DEPENDENCY_NAMES = {"storage": "object storage"}


class DependencyUnavailable(ServiceError):
    """A dependency is down, hung or full; nothing was stored. ``kind`` names it (a metrics
    label too): ``database``, ``storage``, ``transcoder`` or ``encoder`` (no free encode slot)."""

    status, slug, title = 503, "dependency-unavailable", "Service temporarily unavailable"
    retry_after_seconds: ClassVar[int] = 5

    def __init__(self, kind: str, *, detail: str | None = None, retry_after: int | None = None):
        super().__init__(
            detail
            or f"The {_DEPENDENCY_NAMES.get(kind, kind)} is unavailable; nothing was stored. "
            "Retry later.",
            headers={"Retry-After": str(retry_after or self.retry_after_seconds)},
        )
        self.kind = kind
