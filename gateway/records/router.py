import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

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
from gateway.jobs import service as jobs_service
from gateway.jobs.links import job_out, job_url
from gateway.jobs.schemas import JobOut
from gateway.middleware import USER_ID_STATE, request_id_var
from gateway.openapi import TOKEN_SECURITY, problem_responses
from gateway.records import delivery, docs, service
from gateway.records.form import FILE_FIELD, UploadedFile, read_upload_form
from gateway.records.links import record_out
from gateway.records.schemas import RecordItem, RecordOut, RecordPage
from gateway.storage import ObjectStore
from gateway.tempfiles import disk_full_is_507, temporary_directory
from gateway.users.service import check_credentials
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


@router.post(
    "/record",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordOut,
    summary="Upload a WAV recording; get an MP3 download link",
    description=(
        "Checks the credentials, converts the WAV to MP3 and stores it. The answer's `url` (also "
        "in `Location`) downloads the MP3 without a token. A failed upload leaves nothing stored."
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
) -> JSONResponse:
    """Convert the uploaded WAV to MP3 and store it; the answer carries the download link."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + FORM_OVERHEAD_BYTES:
        raise UploadTooLarge(
            f"The upload is larger than the limit of {settings.max_upload_bytes} bytes.",
            headers={"Connection": "close"},  # do not read the body we refuse
        )
    header_token = bearer_token(request)
    checked: list[uuid.UUID] = []

    async def credentials_before_the_file(fields: dict[str, str]) -> None:
        # As curl, browsers and the examples send them: refuse a stranger before the bytes.
        token = header_token or fields.get("token")
        if "user" in fields and token is not None:
            user_id = _form_user_id(fields["user"])
            await check_credentials(database, user_id=user_id, token=token)
            checked.append(user_id)

    with disk_full_is_507():
        async with temporary_directory("riffle-upload-") as spool_dir:
            try:
                form = await read_upload_form(
                    request.headers.get("Content-Type", ""),
                    request.stream(),
                    spool_dir=spool_dir,
                    max_file_bytes=settings.max_upload_bytes,
                    timeout_seconds=settings.upload_timeout_seconds,
                    before_file=credentials_before_the_file,
                )
            except ClientDisconnect:
                raise InvalidInput(
                    "The client disconnected before the upload was complete."
                ) from None
            user_id = _form_user_id(form.fields.get("user"))
            source = _form_file(form.file)
            setattr(request.state, USER_ID_STATE, user_id)  # for the access log
            if user_id not in checked:
                token = header_token or form.fields.get("token")
                await check_credentials(database, user_id=user_id, token=token)
            await check_is_wav(source)
            target = Conversion(uuid.uuid4(), user_id, form.file.filename if form.file else "")
            if respond_async(request):
                return await _submit_job(request, settings, database, store, source, target)
            record = await convert(
                source,
                target,
                database=database,
                store=store,
                transcoder=transcoder,
                max_duration_seconds=settings.max_duration_seconds,
                request_id=request_id_var.get(),
            )
    metrics.stored_bytes.inc(record.size_bytes)
    body = record_out(request, settings, record)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Location": body.url}
    )


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
) -> JSONResponse:
    await jobs_service.check_header(source, max_duration_seconds=settings.max_duration_seconds)
    job = await jobs_service.submit_file(
        source,
        target,
        database=database,
        store=store,
        expires_seconds=settings.upload_expires_seconds,
    )
    body = job_out(request, settings, job, None)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={
            "Location": job_url(request, settings, job.id),
            "Preference-Applied": "respond-async",
        },
    )


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
    body = await service.open_object(store, record, first, last)
    return StreamingResponse(body, status_code=status_code, headers=headers)


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
