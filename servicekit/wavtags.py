"""The text a WAV carries about itself: RIFF ``LIST/INFO``, BWF ``bext`` and iXML, as tags.

Pure functions over bytes. The chunks may sit before the ``data`` chunk (``chunks_before_data``
reads the header the transcoder buffers anyway) or after it (``chunks_from`` reads the bytes that
follow the audio, collected as the body streams past). ``tags_from_chunks`` maps them:

| tag     | LIST/INFO | bext                         | iXML                       |
|---------|-----------|------------------------------|----------------------------|
| title   | INAM      | (sSCENE/sTAKE in description) | SCENE-TAKE (or either one) |
| artist  | IART      | Originator                   | —                          |
| album   | IPRD      | —                            | PROJECT                    |
| comment | ICMT      | Description (free text)      | NOTE                       |
| date    | ICRD      | OriginationDate[THH:MM:SS]   | —                          |
| genre   | IGNR      | —                            | —                          |
| track   | ITRK      | —                            | —                          |

Per tag the first source with a value wins, in the order INFO, bext, iXML (the request's own
fields come before all three, in the transcoder). A ``bext`` description made of ``key=value``
lines (as Sound Devices and others write) is read as sSCENE/sTAKE/sNOTE/sPROJECT, not as a
comment. Nothing else of ``bext`` (coding history, time reference, UMID) becomes a tag.
Text: NUL-terminated or NUL-padded values are cut at the first NUL; UTF-8 when the bytes are
valid UTF-8, else Windows-1252 (INFO and bext declare no charset); control characters dropped,
surrounding space trimmed, at most 255 characters kept.
"""

import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

TAG_NAMES = ("title", "artist", "album", "comment", "date", "genre", "track")
MAX_TAG_CHARS = 255
MAX_METADATA_CHUNK_BYTES = 256 * 1024  # a bigger LIST/bext/iXML is not read (nor kept)
_INFO_TAGS = {
    b"INAM": "title",
    b"IART": "artist",
    b"IPRD": "album",
    b"ICMT": "comment",
    b"ICRD": "date",
    b"IGNR": "genre",
    b"ITRK": "track",
}
_METADATA_CHUNKS = (b"LIST", b"bext", b"iXML")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_KEY_VALUE_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*=(.*)$")
_BEXT_DATE = re.compile(r"^(\d{4})[-:/ ](\d{2})[-:/ ](\d{2})$")
_BEXT_TIME = re.compile(r"^(\d{2})[-:/ ](\d{2})[-:/ ](\d{2})$")


@dataclass(slots=True)
class WavMetadata:
    """The metadata chunks' payloads, as found (several LIST chunks may occur)."""

    info_lists: list[bytes] = field(default_factory=list)
    bext: bytes | None = None
    ixml: bytes | None = None

    def add(self, chunk_id: bytes, payload: bytes) -> None:
        if chunk_id == b"LIST" and payload[:4] == b"INFO":
            self.info_lists.append(payload[4:])
        elif chunk_id == b"bext" and self.bext is None:
            self.bext = payload
        elif chunk_id == b"iXML" and self.ixml is None:
            self.ixml = payload


def iter_chunks(
    buffer: bytes, start: int, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(chunk id, payload start, payload size) of each whole chunk in ``buffer[start:end]``."""
    limit = len(buffer) if end is None else min(end, len(buffer))
    position = start
    while position + 8 <= limit:
        chunk_id = buffer[position : position + 4]
        (size,) = struct.unpack_from("<I", buffer, position + 4)
        payload = position + 8
        if payload + size > limit:
            return
        yield chunk_id, payload, size
        position = payload + size + (size % 2)


def chunks_before_data(header: bytes, data_offset: int, metadata: WavMetadata) -> None:
    """Add the metadata chunks between the RIFF header and the ``data`` chunk's header."""
    _collect(header, 12, data_offset - 8, metadata)


def chunks_from(tail: bytes, metadata: WavMetadata) -> None:
    """Add the metadata chunks of ``tail``: the bytes after the audio data (pad byte included)."""
    _collect(tail, 0, None, metadata)


def _collect(buffer: bytes, start: int, end: int | None, metadata: WavMetadata) -> None:
    for chunk_id, payload, size in iter_chunks(buffer, start, end):
        if chunk_id in _METADATA_CHUNKS and size <= MAX_METADATA_CHUNK_BYTES:
            metadata.add(chunk_id, bytes(buffer[payload : payload + size]))


def tags_from_chunks(metadata: WavMetadata) -> dict[str, str]:
    """The tags the chunks give, by the table above (only tags with a value)."""
    sources = [
        _info_tags(metadata.info_lists),
        _bext_tags(metadata.bext),
        _ixml_tags(metadata.ixml),
    ]
    tags: dict[str, str] = {}
    for name in TAG_NAMES:
        for source in sources:
            if source.get(name):
                tags[name] = source[name]
                break
    return tags


def merge_tags(requested: Mapping[str, str], from_wav: Mapping[str, str]) -> dict[str, str]:
    """The request's fields first, else the WAV's, in ``TAG_NAMES`` order."""
    merged = {**from_wav, **{k: v for k, v in requested.items() if v}}
    return {name: merged[name] for name in TAG_NAMES if merged.get(name)}


def decode_text(raw: bytes) -> str:
    """Chunk text as a clean string: cut at the first NUL, UTF-8 if valid else Windows-1252."""
    return clean_text(_decoded(raw))


def _decoded(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Five bytes are undefined in Windows-1252; Latin-1 reads those (as controls, dropped).
        return "".join(_cp1252(byte) for byte in raw)


def clean_text(text: str) -> str:
    return _CONTROL.sub("", text).strip()[:MAX_TAG_CHARS].strip()


def _cp1252(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


def _info_tags(info_lists: list[bytes]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for payload in info_lists:
        for chunk_id, start, size in iter_chunks(payload, 0):
            name = _INFO_TAGS.get(bytes(chunk_id))
            if name and name not in tags:
                value = decode_text(payload[start : start + size])
                if value:
                    tags[name] = value
    return tags


def _bext_tags(bext: bytes | None) -> dict[str, str]:
    # EBU Tech 3285: Description[256] Originator[32] OriginatorReference[32]
    # OriginationDate[10] OriginationTime[8], then binary fields and the coding history.
    if bext is None or len(bext) < 256:
        return {}
    raw_description = _decoded(bext[:256])
    description = clean_text(raw_description)
    tags: dict[str, str] = {}
    pairs = _key_values(raw_description)
    if pairs is not None:
        tags |= _production_tags(
            pairs.get("SSCENE"), pairs.get("STAKE"), pairs.get("SPROJECT"), pairs.get("SNOTE")
        )
    elif description:
        tags["comment"] = description
    if originator := decode_text(bext[256:288]):
        tags["artist"] = originator
    date = _BEXT_DATE.match(decode_text(bext[320:330]))
    if date:
        stamp = "-".join(date.groups())
        time = _BEXT_TIME.match(decode_text(bext[330:338]))
        tags["date"] = stamp + ("T" + ":".join(time.groups()) if time else "")
    return tags


def _key_values(text: str) -> dict[str, str] | None:
    """``KEY=value`` lines as a dict with upper-case keys; None unless every line is one."""
    lines = [line for line in re.split(r"[\r\n]+", text) if line.strip()]
    matches = [_KEY_VALUE_LINE.match(line) for line in lines]
    if not lines or not all(matches):
        return None
    return {m.group(1).upper(): clean_text(m.group(2)) for m in matches if m is not None}


def _production_tags(
    scene: str | None, take: str | None, project: str | None, note: str | None
) -> dict[str, str]:
    tags: dict[str, str] = {}
    title = "-".join(part for part in (scene, take) if part)
    if title:
        tags["title"] = clean_text(title)
    if project:
        tags["album"] = project
    if note:
        tags["comment"] = note
    return tags


def _ixml_tags(ixml: bytes | None) -> dict[str, str]:
    if not ixml:
        return {}
    try:
        root = fromstring(ixml.rstrip(b"\0 \r\n\t"), forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        return {}

    def text_of(name: str) -> str | None:
        element: Element | None = root.find(name)
        value = clean_text(element.text or "") if element is not None else ""
        return value or None

    return _production_tags(text_of("SCENE"), text_of("TAKE"), text_of("PROJECT"), text_of("NOTE"))
