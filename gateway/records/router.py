import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from gateway import idempotency
from gateway.config import Settings
from gateway.conversion import Conversion, FileSource, check_is_wav, convert
from gateway.db import Database
from gateway.deps import (
    CurrentUser,
    DatabaseDep,
    MetricsDep,
    RecordOwner,
    SettingsDep,
    StoreDep,
    TranscoderDep,
    bearer_token,
)
from gateway.errors import (
    InsufficientStorage,
    InvalidCredentials,
    RangeNotSatisfiable,
    RecordNotFound,
    UploadTimeout,
    UploadTooLarge,
)
from gateway.fair_use import QuotaExceeded, Slot, TooManyUploads, upload_slot
from gateway.jobs import service as jobs_service
from gateway.jobs.links import job_out, job_url
from gateway.jobs.schemas import JobOut
from gateway.metrics import Metrics
from gateway.middleware import USER_ID_STATE, request_id_var
from gateway.models import Job, Record
from gateway.openapi import TOKEN_SECURITY, problem_responses
from gateway.records import delivery, docs, service
from gateway.records.form import FILE_FIELD, UploadedFile, read_upload_form
from gateway.records.links import record_out
from gateway.records.schemas import RecordItem, RecordOut, RecordPage
from gateway.storage import ObjectStore
from gateway.tempfiles import disk_full_is_507, temporary_directory
from gateway.transcoder_client import TranscoderClient
from gateway.users.service import check_credentials
from servicekit import zerocopy
from servicekit.audio_options import AudioOptions
from servicekit.errors import (
    AudioTooLong,
    InvalidInput,
    NotAWav,
    TranscodeTimeout,
    UndecodableAudio,
)

router = APIRouter(tags=["records"])

# Room for the form's boundaries and small fields on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
# The widths GET /record/peaks answers (servicekit.peaks re-reduces the stored pixels to them).
DEFAULT_PIXELS = 1000
MAX_PIXELS = 1 << 16


@router.post(
    "/record",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordOut,
    summary="Upload a WAV recording; get an MP3 download link",
    description=(
        "Checks the credentials, converts the WAV to MP3 and stores it. The answer's `url` (also "
        "in `Location`) downloads the MP3 without a token. A failed upload leaves nothing stored. "
        "Optional fields choose the encoder (`bitrate` CBR or `quality` VBR) and the tags; the "
        "record reports `bitrate_kbps`, `mode`, `tags` and the input's `loudness`, and its "
        "waveform peaks are at `GET /record/peaks`. " + docs.TAG_MAPPING
    ),
    openapi_extra={"requestBody": docs.UPLOAD_BODY, **TOKEN_SECURITY},
    responses={
        202: {
            "description": (
                "With `Prefer: respond-async`: accepted as a job (the body); `Location` is the "
                "job, `Preference-Applied: respond-async`."
            ),
            "model": JobOut,
            "headers": {
                "Location": {
                    "description": "The job: `/jobs/<id>` (and `/jobs/<id>/events`).",
                    "schema": {"type": "string", "format": "uri"},
                },
                "Preference-Applied": {"schema": {"type": "string", "example": "respond-async"}},
            },
        },
        201: {
            "description": "Stored; `Location` is the download link.",
            "headers": {
                "Location": {
                    "description": "The absolute download link (same as `url`).",
                    "schema": {"type": "string", "format": "uri"},
                }
            },
        },
        **problem_responses(
            InvalidCredentials,
            UploadTooLarge,
            UploadTimeout,
            NotAWav,
            InvalidInput,
            UndecodableAudio,
            AudioTooLong,
            TranscodeTimeout,
            InsufficientStorage,
            TooManyUploads,
            QuotaExceeded,
            idempotency.KeyInUse,
            idempotency.KeyReused,
        ),
    },
)
async def add_record(
    request: Request,
    settings: SettingsDep,
    database: DatabaseDep,
    store: StoreDep,
    transcoder: TranscoderDep,
    metrics: MetricsDep,
) -> Response:
    """Convert the uploaded WAV to MP3 and store it; the answer carries the download link."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise UploadTooLarge(
            f"The upload is larger than the limit of {settings.max_upload_bytes} bytes.",
            headers={"Connection": "close"},  # do not read the body we refuse
        )
    key = idempotency.key_of(request)
    async with AsyncExitStack() as held:
        admission = _Admission(request, settings, database, held)
        with disk_full_is_507():
            spool_dir = await held.enter_async_context(temporary_directory("riffle-upload-"))
            try:
                form = await read_upload_form(
                    request.headers.get("Content-Type", ""),
                    request.stream(),
                    spool_dir=spool_dir,
                    max_file_bytes=settings.max_upload_bytes,
                    timeout_seconds=settings.upload_timeout_seconds,
                    before_file=admission.before_the_file,
                    digest=key is not None,
                )
            except ClientDisconnect:
                raise InvalidInput(
                    "The client disconnected before the upload was complete."
                ) from None
            _form_user_id(form.fields.get("user"))  # 422s first, in the order of the fields
            source = _form_file(form.file)
            # Checked before any encode: a bad option is a 422 that costs no CPU.
            options = AudioOptions.from_fields(form.fields, loc=("body",))
            user_id = await admission.admit(form.fields)
            await check_is_wav(source)
            filename = form.file.filename if form.file else ""
            target = Conversion(uuid.uuid4(), user_id, filename, options)
            claimed: idempotency.Claimed | None = None
            if key is not None:
                fields = {name: value for name, value in form.fields.items() if name != "token"}
                fields["prefer-async"] = str(respond_async(request))
                answer = await idempotency.claim(
                    database,
                    user_id=user_id,
                    key=key,
                    fingerprint=idempotency.fingerprint(
                        "POST /record", fields, form.file.sha256 if form.file else ""
                    ),
                    stale_after_seconds=settings.upload_timeout_seconds
                    + settings.transcode_timeout_seconds,
                )
                if isinstance(answer, Response):
                    return answer
                claimed = answer
            try:
                if respond_async(request):
                    return await _submit_job(
                        request, settings, database, store, source, target, claimed, admission.slot
                    )
                return await _convert(
                    request,
                    settings,
                    database,
                    store,
                    transcoder,
                    metrics,
                    source,
                    target,
                    claimed,
                    admission.slot,
                )
            except BaseException:
                if claimed is not None:
                    await idempotency.give_back(database, claimed)
                raise


class _Admission:
    """Who the upload is for, checked once: as soon as the fields before the file allow (a
    stranger is refused before the bytes, as curl, browsers and the examples send them), else
    once the form is read. Admitted uploads hold one of the user's fair-use slots."""

    def __init__(
        self, request: Request, settings: Settings, database: Database, held: AsyncExitStack
    ) -> None:
        self.request, self.settings, self.database, self.held = request, settings, database, held
        self.header_token = bearer_token(request)
        self.admitted: uuid.UUID | None = None
        self.slot: Slot | None = None

    async def before_the_file(self, fields: dict[str, str]) -> None:
        token = self.header_token or fields.get("token")
        if "user" in fields and token is not None:
            await self._admit(_form_user_id(fields["user"]), token)

    async def admit(self, fields: dict[str, str]) -> uuid.UUID:
        user_id = _form_user_id(fields.get("user"))
        setattr(self.request.state, USER_ID_STATE, user_id)  # for the access log
        if self.admitted != user_id:
            await self._admit(user_id, self.header_token or fields.get("token"))
        return user_id

    async def _admit(self, user_id: uuid.UUID, token: str | None) -> None:
        await check_credentials(self.database, user_id=user_id, token=token)
        settings = self.settings
        self.slot = await self.held.enter_async_context(
            upload_slot(
                self.database,
                user_id=user_id,
                limit=settings.max_uploads_in_flight_per_user,
                lifetime_seconds=settings.upload_timeout_seconds
                + settings.transcode_timeout_seconds,
                quota_bytes=settings.user_quota_bytes,
            )
        )
        self.admitted = user_id


def _created(request: Request, settings: Settings, record: Record) -> JSONResponse:
    body = record_out(request, settings, record)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Location": body.url}
    )


async def _convert(
    request: Request,
    settings: Settings,
    database: Database,
    store: ObjectStore,
    transcoder: TranscoderClient,
    metrics: Metrics,
    source: FileSource,
    target: Conversion,
    claimed: idempotency.Claimed | None,
    slot: Slot | None,
) -> JSONResponse:
    def answered(session: Session, record: Record) -> None:
        _with_the_answer(session, slot, claimed, lambda: _created(request, settings, record))

    record = await convert(
        source,
        target,
        database=database,
        store=store,
        transcoder=transcoder,
        max_duration_seconds=settings.max_duration_seconds,
        request_id=request_id_var.get(),
        quota_bytes=settings.user_quota_bytes,
        also=answered,
    )
    metrics.stored_bytes.inc(record.size_bytes)
    return _created(request, settings, record)


def _with_the_answer(
    session: Session,
    slot: Slot | None,
    claimed: idempotency.Claimed | None,
    answer: Callable[[], Response],
) -> None:
    """In the transaction that stores the record (or the job): the fair-use slot is freed (the
    record or job counts from then on) and an idempotency key's answer is kept."""
    if slot is not None:
        slot.release_with(session)
    if claimed is not None:
        claimed.record(session, answer())


def _form_user_id(value: str | None) -> uuid.UUID:
    if value is None:
        raise _missing("user", "field required")
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise _missing("user", "not a valid UUID") from None


def _form_file(file: UploadedFile | None) -> FileSource:
    if file is None:
        raise _missing(FILE_FIELD, "field required")
    return FileSource(file.path, file.size)


def respond_async(request: Request) -> bool:
    """Whether ``Prefer`` (RFC 7240) asks for ``respond-async``."""
    preferences = ",".join(request.headers.getlist("Prefer"))
    return any(
        item.split(";")[0].split("=")[0].strip().lower() == "respond-async"
        for item in preferences.split(",")
    )


async def _submit_job(
    request: Request,
    settings: Settings,
    database: Database,
    store: ObjectStore,
    source: FileSource,
    target: Conversion,
    claimed: idempotency.Claimed | None,
    slot: Slot | None,
) -> JSONResponse:
    await jobs_service.check_header(source, max_duration_seconds=settings.max_duration_seconds)

    def accepted(job: Job) -> JSONResponse:
        return JSONResponse(
            job_out(request, settings, job, None).model_dump(mode="json"),
            status_code=202,
            headers={
                "Location": job_url(request, settings, job.id),
                "Preference-Applied": "respond-async",
            },
        )

    def answered(session: Session, job: Job) -> None:
        _with_the_answer(session, slot, claimed, lambda: accepted(job))

    job = await jobs_service.submit_file(
        source,
        target,
        database=database,
        store=store,
        expires_seconds=settings.upload_expires_seconds,
        also=answered,
    )
    return accepted(job)


def _missing(field: str, msg: str) -> InvalidInput:
    return InvalidInput(f"{field}: {msg}", errors=[{"loc": ["body", field], "msg": msg}])


@router.head("/record", operation_id="head_record", **docs.DOWNLOAD)
@router.get("/record", **docs.DOWNLOAD)
async def download_record(
    request: Request,
    id: Annotated[uuid.UUID, Query(description="The record id.", examples=[docs.RECORD_EXAMPLE])],
    user: Annotated[
        uuid.UUID, Query(description="The owner's user id.", examples=[docs.USER_EXAMPLE])
    ],
    database: DatabaseDep,
    store: StoreDep,
) -> Response:
    """The MP3, streamed from storage; supports one byte range, ETag and HEAD. No token needed."""
    record = await service.find_record(database, record_id=id, user_id=user)
    etag = f'"{record.sha256}"'
    headers = {
        "ETag": etag,
        "Repr-Digest": delivery.repr_digest(record.sha256),
        "Last-Modified": delivery.http_date(record.created_at),
        "Accept-Ranges": "bytes",
        "Content-Disposition": delivery.content_disposition(record.original_filename),
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    if delivery.etag_matches(request.headers.get("If-None-Match"), etag):
        return Response(status_code=304, headers=headers)
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range is not None and if_range.strip() != etag:
        range_header = None
    try:
        byte_range = delivery.parse_range(range_header, record.size_bytes)
    except delivery.Unsatisfiable:
        raise RangeNotSatisfiable(record.size_bytes) from None
    status_code = 200
    first, last = 0, record.size_bytes - 1
    if byte_range is not None:
        status_code = 206
        first, last = byte_range.start, byte_range.end
        headers["Content-Range"] = f"bytes {first}-{last}/{record.size_bytes}"
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Type"] = record.content_type
    if request.method == "HEAD" or record.size_bytes == 0:
        return Response(status_code=status_code, headers=headers)
    # A file the server can send itself (the folder store, under ZeroCopyH11Protocol).
    file = (
        await service.open_object_file(store, record) if zerocopy.offered(request.scope) else None
    )
    if file is not None:
        return zerocopy.FileSpanResponse(
            file, offset=first, count=last - first + 1, status_code=status_code, headers=headers
        )
    body = await service.open_object(store, record, first, last)
    return zerocopy.RelayResponse(
        body, count=last - first + 1, status_code=status_code, headers=headers
    )


@router.get("/record/peaks", **docs.PEAKS)
async def record_peaks(
    id: Annotated[uuid.UUID, Query(description="The record id.", examples=[docs.RECORD_EXAMPLE])],
    user: Annotated[
        uuid.UUID, Query(description="The owner's user id.", examples=[docs.USER_EXAMPLE])
    ],
    database: DatabaseDep,
    store: StoreDep,
    pixels: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_PIXELS,
            description="The wanted `length` (pixels); the answer is the nearest the stored "
            "resolution allows.",
            examples=[DEFAULT_PIXELS],
        ),
    ] = DEFAULT_PIXELS,
) -> JSONResponse:
    """Waveform peaks (audiowaveform JSON v2), under the download's rule: no token, 404 alike."""
    record = await service.find_record(database, record_id=id, user_id=user)
    peaks = await service.read_peaks(store, record)
    frames = round(record.duration_seconds * peaks.sample_rate)
    body = peaks.for_pixels(pixels, frames).to_json()
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=0, must-revalidate"})


@router.get(
    "/users/{user_id}/records",
    response_model=RecordPage,
    summary="List a user's recordings, newest first",
    description=(
        "Needs the user's token (`Authorization: Bearer` or `token`). Keyset-paginated: pass "
        "`next_cursor` back as `cursor` until it is null."
    ),
    openapi_extra=TOKEN_SECURITY,
    responses={
        200: docs.LIST_RESPONSE,
        **problem_responses(InvalidCredentials, InvalidInput),
    },
)
async def list_records(
    request: Request,
    user_id: CurrentUser,
    settings: SettingsDep,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.", examples=[20])] = 50,
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page (opaque).", examples=[None]),
    ] = None,
) -> RecordPage:
    """Keyset-paginated: pages stay fast and stable however many recordings there are."""
    page = await service.list_recordings(database, user_id=user_id, limit=limit, cursor=cursor)
    items = [
        RecordItem(
            **record_out(request, settings, record).model_dump(),
            original_filename=record.original_filename,
            created_at=record.created_at,
        )
        for record in page.records
    ]
    return RecordPage(items=items, next_cursor=page.next_cursor)


@router.delete(
    "/record",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a recording and its MP3",
    description=(
        "Needs the owner's token. Later downloads answer 404; another user's record answers 404 "
        "and stays."
    ),
    openapi_extra=TOKEN_SECURITY,
    responses={
        204: {"description": "Deleted."},
        **problem_responses(InvalidCredentials, InvalidInput, RecordNotFound),
    },
)
async def delete_record(
    id: Annotated[uuid.UUID, Query(description="The record id.", examples=[docs.RECORD_EXAMPLE])],
    user: RecordOwner,
    database: DatabaseDep,
    store: StoreDep,
) -> Response:
    """Deletes the row and the object; later downloads answer 404."""
    await service.delete_recording(database, store, record_id=id, user_id=user)
    return Response(status_code=204)
