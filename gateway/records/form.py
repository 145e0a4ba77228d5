"""Reads the multipart upload as it streams in: the file goes to disk, never whole into memory."""

import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from gateway.errors import UploadTimeout, UploadTooLarge
from gateway.multipart import parser_for
from servicekit.errors import InvalidInput, ServiceError

FILE_FIELD = "file"
MAX_FIELD_BYTES = 4096
MAX_PARTS = 16
# Bytes buffered before one write to disk in a worker thread.
_FLUSH_BYTES = 1024 * 1024


@dataclass(slots=True)
class UploadedFile:
    path: Path
    filename: str
    size: int
    sha256: str = ""  # of the bytes, when the caller asked for it (``digest=True``)


@dataclass(slots=True)
class UploadForm:
    fields: dict[str, str]
    file: UploadedFile | None


@dataclass(slots=True)
class _Part:
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


class _FormReader:
    """python-multipart callbacks; file bytes collect in ``pending`` until flushed to disk."""

    def __init__(self, spool: BinaryIO, path: Path, max_file_bytes: int, digest: bool) -> None:
        self.spool, self.path, self.max_file_bytes = spool, path, max_file_bytes
        self.digest = hashlib.sha256() if digest else None
        self.fields: dict[str, str] = {}
        self.file: UploadedFile | None = None
        self.pending = bytearray()
        self.parts = 0
        self.finished = False
        self.file_started = False  # set when the file part begins, until ``before_file`` ran
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _invalid(["body"], f"more than {MAX_PARTS} form parts")
        self._part = _Part()
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_field).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self._part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self._part.name == FILE_FIELD:
            if self.file is not None:
                raise _invalid(["body", FILE_FIELD], "more than one file")
            self.file = UploadedFile(self.path, self._part.filename or "", 0)
            self.file_started = True

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.name == FILE_FIELD:
            assert self.file is not None
            self.file.size += end - start
            if self.file.size > self.max_file_bytes:
                raise UploadTooLarge(
                    f"The file is larger than the limit of {self.max_file_bytes} bytes."
                )
            self.pending += data[start:end]
            if self.digest is not None:
                self.digest.update(data[start:end])
            return
        self._part.value += data[start:end]
        if len(self._part.value) > MAX_FIELD_BYTES:
            raise _invalid(["body", self._part.name], f"longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._part.name != FILE_FIELD and self._part.name not in self.fields:
            try:
                self.fields[self._part.name] = self._part.value.decode()
            except UnicodeDecodeError:
                raise _invalid(["body", self._part.name], "not UTF-8 text") from None

    def on_end(self) -> None:
        self.finished = True
        if self.file is not None and self.digest is not None:
            self.file.sha256 = self.digest.hexdigest()

    async def flush(self) -> None:
        if self.pending:
            data, self.pending = bytes(self.pending), bytearray()
            await anyio.to_thread.run_sync(self.spool.write, data)


async def read_upload_form(
    content_type: str,
    body: AsyncIterator[bytes],
    *,
    spool_dir: Path,
    max_file_bytes: int,
    timeout_seconds: float = math.inf,
    before_file: Callable[[dict[str, str]], Awaitable[None]] | None = None,
    digest: bool = False,
) -> UploadForm:
    """Parse ``multipart/form-data``; the ``file`` part is written to a file in ``spool_dir``.

    Raises ``UploadTooLarge`` as soon as the file passes ``max_file_bytes`` (the rest is not read)
    and ``InvalidInput`` for anything that is not a well-formed form; ``UploadTimeout`` when the
    body has not fully arrived within ``timeout_seconds``. ``before_file(fields)`` runs when the
    file part begins, before any of its bytes reach the disk, with the fields that came before
    it; what it raises is answered before the rest is read. ``digest``: also take the file's
    SHA-256 as it streams (an idempotency key's fingerprint). The caller owns ``spool_dir``.
    """
    media_type, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise _invalid(["body"], "expected a multipart/form-data body")
    path = spool_dir / "upload.wav"
    spool = await anyio.to_thread.run_sync(_create, path)
    with spool:
        reader = _FormReader(spool, path, max_file_bytes, digest)
        parser = parser_for(boundary, reader)
        try:
            with anyio.fail_after(timeout_seconds):
                async for chunk in body:
                    parser.write(chunk)
                    if reader.file_started:
                        reader.file_started = False
                        if before_file is not None:
                            await before_file(dict(reader.fields))
                    if len(reader.pending) >= _FLUSH_BYTES:
                        await reader.flush()
            parser.finalize()
        except TimeoutError:
            raise _unread(
                UploadTimeout(f"The upload did not arrive within {timeout_seconds:g} s.")
            ) from None
        except MultipartParseError as error:
            raise _unread(_invalid(["body"], f"malformed multipart body: {error}")) from None
        except ServiceError as error:
            raise _unread(error) from None
        await reader.flush()
    if not reader.finished:
        raise _invalid(["body"], "the multipart body ended before its closing boundary")
    return UploadForm(reader.fields, reader.file)


def _create(path: Path) -> BinaryIO:
    return path.open("wb")


def _unread(error: ServiceError) -> ServiceError:
    """Mark an answer given before the body was read to its end: the server then closes the
    connection instead of reading (and discarding) the rest of a possibly huge upload."""
    error.headers["Connection"] = "close"
    return error


def _invalid(loc: list[str], msg: str) -> InvalidInput:
    return InvalidInput(msg, errors=[{"loc": loc, "msg": msg}])
