import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from gateway.config import Settings
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
    InvalidCredentials,
    RangeNotSatisfiable,
    RecordNotFound,
    UploadTimeout,
    UploadTooLarge,
)
from gateway.middleware import USER_ID_STATE, request_id_var
from gateway.models import Record
from gateway.openapi import TOKEN_SECURITY, problem_responses
from gateway.records import delivery, docs, service
from gateway.records.form import FILE_FIELD, UploadedFile, read_upload_form
from gateway.records.schemas import Loudness, RecordItem, RecordOut, RecordPage
from gateway.tempfiles import disk_full_is_507, temporary_directory
from gateway.users.service import check_credentials
from servicekit.audio_options import AudioOptions
from servicekit.errors import InvalidInput, NotAWav, TranscodeTimeout, UndecodableAudio
from servicekit.peaks import DEFAULT_PIXELS, MAX_PIXELS

router = APIRouter(tags=["records"])

# Room for the form's boundaries and small fields on top of the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024


def record_url(request: Request, settings: Settings, record: Record) -> str:
    """The absolute download link: ``PUBLIC_BASE_URL`` when set, else as the client addressed us."""
    base = settings.public_base_url or str(request.base_url).rstrip("/")
    return f"{base}/record?id={record.id}&user={record.user_id}"


def record_out(request: Request, settings: Settings, record: Record) -> RecordOut:
    measured = record.integrated_lufs is not None or record.true_peak_dbtp is not None
    return RecordOut(
        id=record.id,
        user=record.user_id,
        url=record_url(request, settings, record),
        duration_seconds=record.duration_seconds,
        size_bytes=record.size_bytes,
        content_type=record.content_type,
        bitrate_kbps=record.bitrate_kbps,
        mode="vbr" if record.mode == "vbr" else "cbr",
        tags=record.tags,
        loudness=Loudness(
            integrated_lufs=record.integrated_lufs, true_peak_dbtp=record.true_peak_dbtp
        )
        if measured or record.peaks_key is not None
        else None,
    )


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
            TranscodeTimeout,
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
            upload = service.Upload(
                user_id=_form_user_id(form.fields.get("user")),
                wav=_form_file(form.file),
                filename=form.file.filename if form.file else "",
                # Checked before any encode: a bad option is a 422 that costs no CPU.
                options=AudioOptions.from_fields(form.fields, loc=("body",)),
            )
            setattr(request.state, USER_ID_STATE, upload.user_id)  # for the access log
            if upload.user_id not in checked:
                token = header_token or form.fields.get("token")
                await check_credentials(database, user_id=upload.user_id, token=token)
            record = await service.add_recording(
                upload,
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


def _form_file(file: UploadedFile | None) -> Path:
    if file is None:
        raise _missing(FILE_FIELD, "field required")
    return file.path


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
    body = await service.open_object(store, record, first, last)
    return StreamingResponse(body, status_code=status_code, headers=headers)


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
