"""The one check both the hypothesis properties and the atheris fuzzer run over WAV headers."""

from servicekit import wav
from servicekit.errors import ServiceError

# Prefixes longer than the header budget are never parsed by the encoder (it refuses first).
MAX_INPUT_BYTES = 64 * 1024


def check(data: bytes) -> None:
    """Parse ``data`` as every caller does; only the module's own errors may escape.

    Also checks what callers rely on: a parsed header points inside the input, and a longer
    prefix never changes a header already found.
    """
    data = data[:MAX_INPUT_BYTES]
    wav.sniff(data)
    try:
        found = wav.parse_header(data)
    except ServiceError:
        found = None
    if found is not None:
        assert wav.MAGIC_BYTES + 8 <= found.data_offset <= len(data)
        assert wav.parse_header(data[: found.data_offset]) == found
        assert wav.parse_header(data + b"\0" * 64) == found
    try:
        header = wav.parse_header(data, complete=True)
    except ServiceError:
        return
    assert header is not None
    assert header == found
    try:
        wav.check_supported(header, max_duration_seconds=3 * 3600)
    except ServiceError:
        return
    duration = header.duration_seconds
    assert duration is None or duration >= 0
