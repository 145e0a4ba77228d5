"""The audio options of an upload (API.md section 9), parsed and validated in one place.

The same ``AudioOptions.from_fields`` reads the multipart form fields of ``POST /record``, the tus
``Upload-Metadata`` keys and the transcoder's query parameters; a bad value is the contract's 422
``InvalidInput`` whose ``errors`` name each field (``loc`` = the given prefix + the field name).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from servicekit.errors import InvalidInput

# MPEG-1 layer III bit rates (kbit/s): what a client may ask for.
CBR_KBPS = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
# MPEG-2/2.5 layer III (output rates below 32 kHz) allow 8-160; of the above, those up to 160.
LOW_RATE_MAX_KBPS = 160
VBR_QUALITIES = range(10)  # LAME -V0 (best) … -V9
TEXT_FIELDS = ("title", "artist", "album", "comment")
MAX_TEXT_CHARS = 255
OPTION_FIELDS = ("bitrate", "quality", *TEXT_FIELDS)

Mode = Literal["cbr", "vbr"]


@dataclass(frozen=True, slots=True)
class AudioOptions:
    """The encoder choice and the tags a client asked for; ``None``: not asked for."""

    bitrate_kbps: int | None = None  # CBR
    quality: int | None = None  # VBR -V
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    comment: str | None = None

    @property
    def mode(self) -> Mode | None:
        if self.quality is not None:
            return "vbr"
        return "cbr" if self.bitrate_kbps is not None else None

    def tags(self) -> dict[str, str]:
        """The text fields that were given (an empty string is not given)."""
        values = {name: getattr(self, name) for name in TEXT_FIELDS}
        return {name: value for name, value in values.items() if value}

    def as_fields(self) -> dict[str, str]:
        """Back to fields, as ``from_fields`` reads them (for the transcoder's query)."""
        fields = self.tags()
        if self.bitrate_kbps is not None:
            fields["bitrate"] = str(self.bitrate_kbps)
        if self.quality is not None:
            fields["quality"] = str(self.quality)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str], *, loc: Sequence[str]) -> "AudioOptions":
        """Parse the option fields of ``fields`` (others are ignored); raise one ``InvalidInput``
        listing every bad one."""
        errors: list[dict[str, object]] = []
        messages: list[str] = []

        def fail(name: str, msg: str) -> None:
            errors.append({"loc": [*loc, name], "msg": msg})
            messages.append(f"{name}: {msg}")

        bitrate = _integer(fields.get("bitrate"), CBR_KBPS, "bitrate", fail)
        quality = _integer(fields.get("quality"), VBR_QUALITIES, "quality", fail)
        if bitrate is not None and quality is not None:
            fail("quality", "give either bitrate (CBR) or quality (VBR), not both")
        texts: dict[str, str | None] = {}
        for name in TEXT_FIELDS:
            value = fields.get(name)
            if value is not None:
                value = value.strip()
                if len(value) > MAX_TEXT_CHARS:
                    fail(name, f"longer than {MAX_TEXT_CHARS} characters")
                elif any(_is_control(char) for char in value):
                    fail(name, "contains control characters")
            texts[name] = value or None
        if errors:
            raise InvalidInput("; ".join(messages), errors=errors)
        return cls(bitrate_kbps=bitrate, quality=quality, **texts)


def effective_cbr_kbps(requested_kbps: int, output_sample_rate: int) -> int:
    """The CBR rate LAME is given: below 32 kHz (MPEG-2/2.5) at most 160 kbit/s."""
    if output_sample_rate < 32000:
        return min(requested_kbps, LOW_RATE_MAX_KBPS)
    return requested_kbps


def _integer(
    raw: str | None, allowed: Sequence[int], name: str, fail: Callable[[str, str], None]
) -> int | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip().removesuffix("k")
    if not text.isdecimal() or int(text) not in allowed:
        choices = ", ".join(str(value) for value in allowed)
        fail(name, f"must be one of {choices}")
        return None
    return int(text)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F
