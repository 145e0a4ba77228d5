"""tus 1.0.0 at ``/uploads/``: core, creation, creation-with-upload, termination, expiration and
checksum (sha1, sha256). The protocol's headers are read and written here; what they mean for an
upload is ``gateway.uploads.service``'s."""

import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi import Path as PathParameter
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import idempotency
from gateway.config import Settings
from gateway.conversion import clean_filename
from gateway.db import Database
from gateway.deps import DatabaseDep, SettingsDep, StoreDep, TokenUser, bearer_token
from gateway.errors import InvalidCredentials, UploadExpired, UploadNotFound, UploadTooLarge
from gateway.fair_use import TooManyUploads
from gateway.jobs.links import job_url
from gateway.models import Upload
from gateway.openapi import TOKEN_SECURITY, problem_responses
from gateway.records.delivery import http_date
from gateway.records.links import public_base_url
from gateway.storage import ObjectStore
from gateway.tempfiles import disk_full_is_507, temporary_directory
from gateway.uploads import service
from gateway.uploads.store import CONTENT_TYPE
from gateway.users.service import check_credentials
from servicekit.audio_options import AudioOptions
from servicekit.errors import InvalidInput, NotAWav, ServiceError

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
# What browsers may read of our answers (CORS): the protocol's headers and ours.
EXPOSED_HEADERS = [
    "Location",
    "Link",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "X-Request-ID",
    "Retry-After",
]
PATH = "/uploads"
MAX_METADATA_BYTES = 4096

router = APIRouter(prefix=PATH, tags=["uploads"])


class TusVersionUnsupported(ServiceError):
    status, slug, title = 412, "tus-version-unsupported", "Tus-Resumable missing or unsupported"

    def __init__(self) -> None:
        super().__init__(
            f"Send Tus-Resumable: {TUS_VERSION} (the one version served).",
            headers={"Tus-Version": TUS_VERSION},
        )


class TusRequestInvalid(ServiceError):
    status, slug, title = 400, "tus-request-invalid", "Invalid tus request"


class TusHeadersMiddleware:
    """``Tus-Resumable`` on every answer under ``/uploads`` (problems included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(PATH):
            await self.app(scope, receive, send)
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"tus-resumable" for name, _ in headers):
                    headers.append((b"tus-resumable", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_version)


def require_tus_version(request: Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


TusVersion = Depends(require_tus_version)
UploadId = Annotated[
    uuid.UUID,
    PathParameter(
        description="The upload id (its job's id too).",
        examples=["9a4e1c7b-2d3f-4e5a-8b6c-7d8e9f0a1b2c"],
    ),
]
_CREATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(InvalidCredentials),
    412: {"description": "Tus-Resumable missing or not 1.0.0 (answered with `Tus-Version`)."},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_CREATION_RESPONSES,
    **problem_responses(InvalidCredentials, UploadNotFound, UploadExpired),
}


def _header(name: str, description: str, example: str, *, required: bool = False) -> dict[str, Any]:
    """A request header, for the OpenAPI document (the routes read them from the request)."""
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
        "example": example,
    }


def _answer_headers(**described: str) -> dict[str, Any]:
    """Response headers, by name (``Upload_Offset`` for ``Upload-Offset``), for the document."""
    return {
        name.replace("_", "-"): {"description": text, "schema": {"type": "string"}}
        for name, text in described.items()
    }


def _openapi(*headers: dict[str, Any], body: bool | None = None) -> dict[str, Any]:
    """``openapi_extra`` of a tus route: bearer auth, the tus headers it reads, and (``body``
    required or not) the ``application/offset+octet-stream`` bytes."""
    extra: dict[str, Any] = {**TOKEN_SECURITY, "parameters": [_TUS_RESUMABLE, *headers]}
    if body is not None:
        extra["requestBody"] = {
            "required": body,
            "content": {CONTENT_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    return extra


_TUS_RESUMABLE = _header("Tus-Resumable", "The protocol version; else 412.", "1.0.0", required=True)
_UPLOAD_OFFSET = _header(
    "Upload-Offset",
    "Where these bytes go: the upload's offset (HEAD tells), else 409.",
    "0",
    required=True,
)
_UPLOAD_CHECKSUM = _header(
    "Upload-Checksum",
    "`sha1` or `sha256`, a space, the base64 digest of this request's bytes; 460 if they differ.",
    "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=",
)
_PROGRESS_HEADERS = _answer_headers(
    Upload_Offset="The upload's offset now.",
    Upload_Expires="When the upload expires if no byte arrives.",
    Link='With the last byte: `<…/jobs/<upload id>>; rel="monitor"`.',
)


@router.options(
    "/",
    status_code=204,
    response_class=Response,
    summary="tus discovery: versions, extensions, limits",
    description="No credentials needed (discovery and CORS pre-flights carry none).",
)
@router.options("/{upload_id}", status_code=204, response_class=Response, include_in_schema=False)
async def tus_options(settings: SettingsDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(settings.max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(service.CHECKSUMS),
        },
    )


@router.post(
    "/",
    status_code=201,
    response_class=Response,
    dependencies=[TusVersion],
    summary="Create a tus upload (optionally with its first bytes)",
    description=(
        "`Upload-Length` (at most `Tus-Max-Size`; `Upload-Defer-Length` is not offered), "
        "`Upload-Metadata` with the owner's `user` id (base64, as tus defines) and optionally "
        "`filename`; `Authorization: Bearer <token>` of that user. With a body "
        "(`Content-Type: application/offset+octet-stream`) its bytes are taken at once. When the "
        "last byte is in, the recording is converted as the job `/jobs/<upload id>` "
        '(`Link: <…>; rel="monitor"`).'
    ),
    openapi_extra=_openapi(
        _header(
            "Upload-Length",
            "The upload's size in bytes, at most Tus-Max-Size.",
            "882044",
            required=True,
        ),
        _header(
            "Upload-Metadata",
            "Comma-separated `key base64(value)`: `user` (the owner's id, required), "
            "`filename`, options.",
            "user MmJlYzAxM2YtYzIyNS00NzZkLWIyOWYtNDRlODA2NDFjNWVl,filename dG9uZS53YXY=",
            required=True,
        ),
        _UPLOAD_CHECKSUM,
        body=False,
    ),
    responses={
        201: {
            "description": "Created.",
            "headers": _answer_headers(Location="The upload's absolute URL.") | _PROGRESS_HEADERS,
        },
        **_CREATION_RESPONSES,
        **problem_responses(
            InvalidCredentials,
            UploadTooLarge,
            NotAWav,
            TusRequestInvalid,
            TooManyUploads,
            idempotency.KeyInUse,
            idempotency.KeyReused,
            InvalidInput,
        ),
    },
)
async def create_upload(
    request: Request, settings: SettingsDep, database: DatabaseDep, store: StoreDep
) -> Response:
    if "Upload-Defer-Length" in request.headers:
        raise TusRequestInvalid("Upload-Defer-Length is not offered: send Upload-Length.")
    length = _non_negative(request.headers.get("Upload-Length"), "Upload-Length")
    if length > settings.max_upload_bytes:
        raise UploadTooLarge(
            f"Upload-Length is over the limit of {settings.max_upload_bytes} bytes.",
            headers={"Connection": "close"},
        )
    header = request.headers.get("Upload-Metadata", "")
    if len(header) > MAX_METADATA_BYTES:
        raise TusRequestInvalid(f"Upload-Metadata is longer than {MAX_METADATA_BYTES} bytes.")
    metadata = parse_metadata(header)
    user_id = _owner(metadata.get("user"))
    await check_credentials(database, user_id=user_id, token=bearer_token(request))
    # The audio options of API section 9 ride as metadata keys: checked now, used by the job.
    options = AudioOptions.from_fields(metadata, loc=("metadata",))
    claimed: idempotency.Claimed | None = None
    if (key := idempotency.key_of(request)) is not None:
        # The same request: the same length and metadata (tus sends nothing else that counts).
        answer = await idempotency.claim(
            database,
            user_id=user_id,
            key=key,
            fingerprint=idempotency.fingerprint(
                "POST /uploads/", {**metadata, "upload-length": str(length)}
            ),
            stale_after_seconds=settings.upload_timeout_seconds,
        )
        if isinstance(answer, Response):
            return answer
        claimed = answer

    def created(upload: Upload) -> Response:
        location = f"{public_base_url(request, settings)}{PATH}/{upload.id}"
        return Response(
            status_code=201,
            headers={"Location": location, "Upload-Expires": http_date(upload.expires_at)},
        )

    def answered(session: Session, upload: Upload) -> None:
        if claimed is not None:
            claimed.record(session, created(upload))

    try:
        upload = await service.create(
            database,
            user_id=user_id,
            length=length,
            metadata_header=header,
            filename=clean_filename(metadata.get("filename", "")),
            options=options.as_fields(),
            expires_seconds=settings.upload_expires_seconds,
            max_in_flight=settings.max_uploads_in_flight_per_user,
            also=answered,
        )
    except BaseException:
        if claimed is not None:
            await idempotency.give_back(database, claimed)
        raise
    response = created(upload)
    if request.headers.get("Content-Type", "").startswith(CONTENT_TYPE):
        appended = await _append(request, settings, database, store, upload, offset=0)
        response.headers.update(_progress_headers(request, settings, appended))
    return response


@router.head(
    "/{upload_id}",
    response_class=Response,
    dependencies=[TusVersion],
    summary="Where a tus upload is: Upload-Offset",
    description=(
        "`Upload-Offset` (resume from there), `Upload-Length`, `Upload-Metadata`, "
        "`Upload-Expires`; also after the last byte, until the upload expires. Another user's "
        "upload answers 404, a token that is no one's 401."
    ),
    openapi_extra=_openapi(),
    responses={
        200: {
            "description": "The upload (no body).",
            "headers": _answer_headers(
                Upload_Offset="Bytes received: resume from here.",
                Upload_Length="The upload's size.",
                Upload_Metadata="As sent at creation.",
                Upload_Expires="When the upload expires if no byte arrives.",
                Cache_Control="`no-store`.",
            ),
        },
        **_RESPONSES,
    },
)
async def upload_status(upload_id: UploadId, user_id: TokenUser, database: DatabaseDep) -> Response:
    upload = await service.find(database, upload_id=upload_id, user_id=user_id)
    return Response(
        status_code=200,
        headers={
            "Upload-Offset": str(upload.offset),
            "Upload-Length": str(upload.length),
            "Upload-Metadata": upload.metadata_header,
            "Upload-Expires": http_date(upload.expires_at),
            "Cache-Control": "no-store",
        },
    )


@router.patch(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    dependencies=[TusVersion],
    summary="Append bytes to a tus upload at Upload-Offset",
    description=(
        "`Content-Type: application/offset+octet-stream`, `Upload-Offset` = the upload's "
        "offset (else 409), optional `Upload-Checksum: sha1|sha256 <base64>` (460 on mismatch: "
        "nothing of the request is kept). If the first 12 bytes are not a RIFF/RF64 WAVE header "
        "the answer is 415 and the upload is terminated. More bytes than are left is 413. The "
        'answer to the last byte carries `Link: <…/jobs/<upload id>>; rel="monitor"`: the '
        "conversion job. A connection that drops keeps the bytes that arrived (unless a "
        "checksum was sent): ask HEAD, then go on from its offset."
    ),
    openapi_extra=_openapi(_UPLOAD_OFFSET, _UPLOAD_CHECKSUM, body=True),
    responses={
        204: {"description": "Taken.", "headers": _PROGRESS_HEADERS},
        **_RESPONSES,
        **problem_responses(
            NotAWav,
            UploadTooLarge,
            TusRequestInvalid,
            service.UnsupportedChecksum,
            service.ChecksumInvalid,
            service.OffsetMismatch,
            service.ChecksumMismatch,
        ),
    },
)
async def append_to_upload(
    request: Request,
    upload_id: UploadId,
    user_id: TokenUser,
    settings: SettingsDep,
    database: DatabaseDep,
    store: StoreDep,
) -> Response:
    if not request.headers.get("Content-Type", "").startswith(CONTENT_TYPE):
        raise _WrongContentType()
    offset = _non_negative(request.headers.get("Upload-Offset"), "Upload-Offset")
    upload = await service.find(database, upload_id=upload_id, user_id=user_id)
    appended = await _append(request, settings, database, store, upload, offset=offset)
    return Response(status_code=204, headers=_progress_headers(request, settings, appended))


@router.delete(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    dependencies=[TusVersion],
    summary="Terminate a tus upload: its bytes are removed",
    description="The partial data is removed; later requests answer 404.",
    openapi_extra=_openapi(),
    responses={204: {"description": "Removed; later requests answer 404."}, **_RESPONSES},
)
async def terminate_upload(
    upload_id: UploadId, user_id: TokenUser, database: DatabaseDep, store: StoreDep
) -> Response:
    upload = await service.find(database, upload_id=upload_id, user_id=user_id)
    await service.terminate(database, store, upload)
    return Response(status_code=204)


class _WrongContentType(ServiceError):
    status, slug, title = (
        415,
        "tus-content-type",
        "Content-Type must be application/offset+octet-stream",
    )

    def __init__(self) -> None:
        super().__init__(f"PATCH bodies are sent as {CONTENT_TYPE}.")


async def _append(
    request: Request,
    settings: Settings,
    database: Database,
    store: ObjectStore,
    upload: Upload,
    *,
    offset: int,
) -> service.Appended:
    checksum = service.parse_checksum(request.headers.get("Upload-Checksum"))
    with disk_full_is_507():
        async with temporary_directory("riffle-chunk-") as spool_dir:
            return await service.append(
                database,
                store,
                upload,
                offset=offset,
                body=_body(request),
                checksum=checksum,
                spool_dir=spool_dir,
                expires_seconds=settings.upload_expires_seconds,
            )


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            yield piece
    except ClientDisconnect:
        raise service.Disconnected() from None


def _progress_headers(
    request: Request, settings: Settings, appended: service.Appended
) -> dict[str, str]:
    headers = {
        "Upload-Offset": str(appended.upload.offset),
        "Upload-Expires": http_date(appended.upload.expires_at),
    }
    if appended.job is not None:
        headers["Link"] = f'<{job_url(request, settings, appended.job.id)}>; rel="monitor"'
    return headers


def _non_negative(value: str | None, name: str) -> int:
    if value is None or not value.isdigit():
        raise TusRequestInvalid(f"{name} must be a non-negative integer.")
    return int(value)


def parse_metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs (the value optional)."""
    metadata: dict[str, str] = {}
    for pair in filter(None, (item.strip() for item in header.split(","))):
        key, _, encoded = pair.partition(" ")
        if not key or " " in encoded.strip() or key in metadata:
            raise TusRequestInvalid(f"Upload-Metadata: malformed pair {pair[:40]!r}.")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise TusRequestInvalid(
                f"Upload-Metadata: the value of {key!r} is not base64 of UTF-8 text."
            ) from None
    return metadata


def _owner(value: str | None) -> uuid.UUID:
    """The ``user`` of the metadata; missing or malformed is the one 401 of section 2."""
    try:
        return uuid.UUID(value or "")
    except ValueError:
        raise InvalidCredentials() from None
