"""The transcoder's errors: the shared catalogue of ``servicekit.errors``, plus its own."""

from servicekit.errors import ServiceError


class EncoderUnavailable(ServiceError):
    """The encoder itself could not be run: a deployment problem, never the input's fault."""

    status, slug, title = 500, "encoder-unavailable", "Encoder unavailable"
