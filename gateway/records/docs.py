"""What /docs says about the records routes: request bodies, headers and examples."""

from typing import Any

from fastapi import Response

from gateway.errors import RangeNotSatisfiable, RecordNotFound
from gateway.openapi import problem_responses
from servicekit.audio_options import CBR_KBPS
from servicekit.errors import InvalidInput

USER_EXAMPLE = "0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00"
RECORD_EXAMPLE = "6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11"
TOKEN_EXAMPLE = "5d1e8f3a-2b4c-4d6e-9f01-a2b3c4d5e6f7"  # noqa: S105 (an example)

TAG_EXAMPLES = {"title": "Take 3", "artist": "Alice", "album": "Field notes", "comment": "Rain"}
TAG_MAPPING = (
    "Tags: the request's `title`/`artist`/`album`/`comment` first, else per tag the first of "
    "RIFF LIST/INFO (INAM title, IART artist, IPRD album, ICMT comment, ICRD date, IGNR genre, "
    "ITRK track), BWF bext (Description → comment, or its sSCENE/sTAKE/sNOTE/sPROJECT lines as "
    "for iXML; Originator → artist; OriginationDate[+Time] → date) and iXML (SCENE-TAKE → title, "
    "PROJECT → album, NOTE → comment), before or after the audio data. INFO and bext text is "
    "UTF-8 when valid, else Windows-1252. A date that is no ID3 timestamp and a track that is no "
    "`n` or `n/m` are dropped. Nothing else (coding history, time reference, encoder names) is "
    "written."
)

UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["user", "file"],
                "properties": {
                    "user": {
                        "type": "string",
                        "format": "uuid",
                        "description": "The user id.",
                        "example": USER_EXAMPLE,
                    },
                    "token": {
                        "type": "string",
                        "description": "The access token (or send Authorization: Bearer).",
                        "example": TOKEN_EXAMPLE,
                    },
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A WAV file (RIFF/RF64 WAVE; the content counts, not the "
                        "name).",
                    },
                    "bitrate": {
                        "type": "integer",
                        "enum": list(CBR_KBPS),
                        "description": "CBR kbit/s (MPEG-1 layer III rates). Default: the "
                        "transcoder's MP3_BITRATE (128). Where the MP3 is below 32 kHz (8-24 kHz "
                        "input: MPEG-2/2.5), rates above 160 are encoded at 160, and "
                        "`bitrate_kbps` says so. Not with `quality`.",
                        "example": 192,
                    },
                    "quality": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 9,
                        "description": "VBR, LAME `-V` 0 (best, ~245 kbit/s) to 9 (~65). The "
                        "MP3 keeps an exact Xing/LAME header (frame count, TOC, delay and "
                        "padding). Not with `bitrate` (both: 422).",
                        "example": 2,
                    },
                    **{
                        name: {
                            "type": "string",
                            "maxLength": 255,
                            "description": f"ID3v2.4 {name}, ahead of what the WAV carries "
                            "(trimmed; no control characters).",
                            "example": example,
                        }
                        for name, example in TAG_EXAMPLES.items()
                    },
                },
            },
            "encoding": {"file": {"contentType": "audio/wav, application/octet-stream"}},
        }
    },
}
DOWNLOAD_HEADERS: dict[str, Any] = {
    "Content-Length": {"schema": {"type": "integer", "example": 80661}},
    "ETag": {"schema": {"type": "string", "example": '"9f86d081884c7d659a2feaa0c55ad015"'}},
    "Last-Modified": {"schema": {"type": "string", "example": "Fri, 27 Nov 2026 03:00:00 GMT"}},
    "Accept-Ranges": {"schema": {"type": "string", "example": "bytes"}},
    "Content-Disposition": {
        "schema": {
            "type": "string",
            "example": "attachment; filename=\"My Song.mp3\"; filename*=UTF-8''My%20Song.mp3",
        }
    },
    "Repr-Digest": {
        "description": "RFC 9530: the SHA-256 of the whole MP3 (also on 206 answers).",
        "schema": {
            "type": "string",
            "example": "sha-256=:k7Uq9W8aSX+hNYzXs3S+h7ERDKYqnmfRE9Ti5T+x/I0=:",
        },
    },
}
DOWNLOAD_REQUEST_HEADERS: list[dict[str, Any]] = [
    {
        "name": "Range",
        "in": "header",
        "required": False,
        "description": "One byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`: answered with 206.",
        "schema": {"type": "string", "example": "bytes=0-1023"},
    },
    {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "An ETag from an earlier download: answered with 304 when it matches.",
        "schema": {"type": "string", "example": '"9f86d081884c7d659a2feaa0c55ad015"'},
    },
    {
        "name": "If-Range",
        "in": "header",
        "required": False,
        "description": "Honour `Range` only if the ETag still matches; else send everything.",
        "schema": {"type": "string"},
    },
]
DOWNLOAD: dict[str, Any] = {
    "summary": "Download a recording's MP3",
    "description": (
        "The MP3, streamed from storage. No token: the link is the capability. Supports one byte "
        "range (206, or 416 when unsatisfiable), `If-None-Match` (304) and HEAD (headers only)."
    ),
    "response_class": Response,
    "openapi_extra": {"parameters": DOWNLOAD_REQUEST_HEADERS},
    "responses": {
        200: {
            "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The MP3.",
            "headers": DOWNLOAD_HEADERS,
        },
        206: {
            "content": {"audio/mpeg": {"schema": {"type": "string", "format": "binary"}}},
            "description": "The requested byte range.",
            "headers": {
                **DOWNLOAD_HEADERS,
                "Content-Range": {"schema": {"type": "string", "example": "bytes 0-1023/80661"}},
            },
        },
        304: {"description": "Not modified: `If-None-Match` matched the ETag."},
        **problem_responses(InvalidInput, RecordNotFound, RangeNotSatisfiable),
    },
}

LIST_RESPONSE: dict[str, Any] = {
    "description": "One page of recordings, newest first.",
    "content": {
        "application/json": {
            "example": {
                "items": [
                    {
                        "id": RECORD_EXAMPLE,
                        "user": USER_EXAMPLE,
                        "url": f"http://localhost:8000/record?id={RECORD_EXAMPLE}"
                        f"&user={USER_EXAMPLE}",
                        "duration_seconds": 5.0,
                        "size_bytes": 80661,
                        "content_type": "audio/mpeg",
                        "bitrate_kbps": 128,
                        "mode": "cbr",
                        "tags": {"title": "Take 1"},
                        "loudness": {"integrated_lufs": -18.4, "true_peak_dbtp": -2.0},
                        "original_filename": "take1.wav",
                        "created_at": "2026-11-27T03:00:00.123456Z",
                    }
                ],
                "next_cursor": None,
            }
        }
    },
}

PEAKS: dict[str, Any] = {
    "summary": "A recording's waveform peaks (BBC audiowaveform JSON, version 2)",
    "description": (
        "What peaks.js and wavesurfer.js load as they are: `version` 2, `channels` (1 for mono "
        "input, else 2: more channels are downmixed as the MP3 is), `sample_rate` of the input, "
        "`samples_per_pixel`, `bits` 8, `length` pixels and `data`, per pixel the min and max "
        "of each channel in turn (int8: the 16-bit sample divided by 256, rounded down). Made "
        "from the input during the conversion and stored beside the MP3 at up to 2^18 pixels "
        "(at least 16 samples each); `pixels` picks the multiple of that resolution nearest to "
        "duration / pixels, so `length` is `pixels` within that rounding (fewer when the "
        "recording has less). No token: the same capability rule and the same 404 as the "
        "download; recordings made before peaks answer 404 too."
    ),
    "response_class": Response,
    "responses": {
        200: {
            "description": "The peaks.",
            "content": {
                "application/json": {
                    "example": {
                        "version": 2,
                        "channels": 2,
                        "sample_rate": 44100,
                        "samples_per_pixel": 224,
                        "bits": 8,
                        "length": 985,
                        "data": [-23, 24, -18, 19, "…"],
                    }
                }
            },
        },
        **problem_responses(InvalidInput, RecordNotFound),
    },
}
