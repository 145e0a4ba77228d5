"""HTTP details of serving a recording: byte ranges, validators, the download file name."""

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_UNSAFE_ASCII = re.compile(r'[^\x20-\x7e]|["\\]')
# RFC 8187 attr-char: everything else in filename* is percent-encoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a ``Range`` header asks for, or ``None`` to send the whole body.

    Headers we do not serve (several ranges, other units, bad syntax) are ignored, as RFC 9110
    allows; a well-formed range outside the body raises ``Unsatisfiable``.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison, as ``If-None-Match`` uses."""
    if header is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag.removeprefix("W/") in candidates


def download_stem(original_filename: str) -> str:
    """The uploaded name without folders and without its last extension (``a.b.WAV`` → ``a.b``)."""
    name = re.split(r"[\\/]", original_filename)[-1].strip()
    stem, dot, _ = name.rpartition(".")
    if not dot or not stem:
        stem = name
    return stem or "recording"


def content_disposition(original_filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / 8187)."""
    stem = download_stem(original_filename)
    ascii_stem = _UNSAFE_ASCII.sub("_", stem)
    encoded = quote(stem, safe=_ATTR_CHARS)
    return f"attachment; filename=\"{ascii_stem}.mp3\"; filename*=UTF-8''{encoded}.mp3"


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def repr_digest(sha256_hex: str) -> str:
    """``Repr-Digest`` (RFC 9530) of the whole representation, from its SHA-256 in hex."""
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"
