"""What /docs says about the records routes: request bodies, headers and examples."""

from typing import Any

from fastapi import Response

from gateway.errors import RangeNotSatisfiable, RecordNotFound
from gateway.openapi import problem_responses
from servicekit.errors import InvalidInput

USER_EXAMPLE = "0b7c9a1e-3f52-4d6a-8e21-5c4b3a291f00"
RECORD_EXAMPLE = "6f1c2a4e-8d43-4b8e-9a57-2f0d7c5e9b11"
TOKEN_EXAMPLE = "5d1e8f3a-2b4c-4d6e-9f01-a2b3c4d5e6f7"  # noqa: S105 (an example)

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
                        "original_filename": "take1.wav",
                        "created_at": "2026-11-27T03:00:00.123456Z",
                    }
                ],
                "next_cursor": None,
            }
        }
    },
}
