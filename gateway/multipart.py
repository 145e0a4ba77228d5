"""python-multipart's push parser, wired to a reader object: the upload form's and the
transcoder's multipart/mixed answer are both read this way."""

from typing import TYPE_CHECKING, cast

from python_multipart.multipart import MultipartParser

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# The parser's callbacks; a reader defines those it needs, as methods of the same names.
_CALLBACKS = (
    "on_part_begin",
    "on_part_data",
    "on_part_end",
    "on_header_field",
    "on_header_value",
    "on_header_end",
    "on_headers_finished",
    "on_end",
)


def parser_for(boundary: bytes, reader: object) -> MultipartParser:
    """A parser of a body with ``boundary`` that calls ``reader``'s ``on_*`` methods."""
    callbacks = {name: getattr(reader, name) for name in _CALLBACKS if hasattr(reader, name)}
    return MultipartParser(boundary, cast("MultipartCallbacks", callbacks))
