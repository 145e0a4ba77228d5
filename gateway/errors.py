"""The gateway's domain errors: what services and stores raise, free of any web framework.

The audio problems and ``DependencyUnavailable`` are the shared catalogue of ``servicekit.errors``;
``servicekit.problems`` renders every one of them as problem+json.
"""

from servicekit.errors import ServiceError


class InvalidCredentials(ServiceError):
    status, slug, title = 401, "invalid-credentials", "Invalid credentials"

    def __init__(self) -> None:
        # One answer for every credential failure, so none of them tells which part was wrong.
        super().__init__(
            "The user id and token do not match a user.",
            headers={"WWW-Authenticate": 'Bearer realm="riffle"'},
        )


class UploadTooLarge(ServiceError):
    status, slug, title = 413, "upload-too-large", "Upload too large"


class UploadTimeout(ServiceError):
    status, slug, title = 408, "upload-timeout", "Upload took too long"


class RecordNotFound(ServiceError):
    status, slug, title = 404, "record-not-found", "Record not found"

    def __init__(self) -> None:
        super().__init__("No record with this id exists for this user.")


class RangeNotSatisfiable(ServiceError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__(
            f"The requested range is outside the {size}-byte recording.",
            headers={"Content-Range": f"bytes */{size}"},
        )


class InsufficientStorage(ServiceError):
    """The gateway's own disk (the upload spool) is full: nothing was kept."""

    status, slug, title = 507, "insufficient-storage", "Insufficient storage"
    retry_after_seconds = 30

    def __init__(self) -> None:
        super().__init__(
            "The server has no disk space left for this upload; nothing was stored. Retry later.",
            headers={"Retry-After": str(self.retry_after_seconds)},
        )


class JobNotFound(ServiceError):
    status, slug, title = 404, "job-not-found", "Job not found"

    def __init__(self) -> None:
        super().__init__("No job with this id exists for this user.")


class UploadNotFound(ServiceError):
    status, slug, title = 404, "upload-not-found", "Upload not found"

    def __init__(self) -> None:
        super().__init__("No upload with this id exists for this user.")


class UploadExpired(ServiceError):
    status, slug, title = 410, "upload-expired", "Upload expired"

    def __init__(self) -> None:
        super().__init__("The upload expired before it was finished; start a new one.")


class WebhookTargetRefused(ServiceError):
    """A webhook URL that reaches (or resolves to) a loopback, private or other non-public
    address, unless WEBHOOK_ALLOW_PRIVATE=true."""

    status, slug, title = 422, "webhook-target-refused", "Webhook target refused"


class WebhookNotFound(ServiceError):
    status, slug, title = 404, "webhook-not-found", "Webhook not found"

    def __init__(self) -> None:
        super().__init__("This user has no webhook.")
