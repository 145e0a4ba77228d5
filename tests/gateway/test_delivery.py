from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.records.delivery import (
    ByteRange,
    Unsatisfiable,
    content_disposition,
    download_stem,
    etag_matches,
    http_date,
    parse_range,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-100", ByteRange(900, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=900-5000", ByteRange(900, 999)),
        ("bytes=999-999", ByteRange(999, 999)),
        # Not a single well-formed byte range: served whole, as RFC 9110 allows.
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=5-1", None),
        ("bytes=-", None),
        ("garbage", None),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-2000", "bytes=-0"])
def test_range_outside_the_body_is_unsatisfiable(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 1000)


@given(size=st.integers(1, 10**12), header=st.text(max_size=40))
def test_any_range_header_yields_a_range_inside_the_body_or_none(size: int, header: str) -> None:
    try:
        byte_range = parse_range(header, size)
    except Unsatisfiable:
        return
    if byte_range is not None:
        assert 0 <= byte_range.start <= byte_range.end < size


@pytest.mark.parametrize(
    ("uploaded", "stem"),
    [
        ("My Song.WAV", "My Song"),
        ("take1", "take1"),
        ("a.b.wav", "a.b"),
        ("../../etc/passwd.wav", "passwd"),
        ("C:\\Users\\me\\memo.wav", "memo"),
        ("", "recording"),
        (".wav", ".wav"),
    ],
)
def test_download_stem_drops_folders_and_the_last_extension(uploaded: str, stem: str) -> None:
    assert download_stem(uploaded) == stem


def test_content_disposition_has_an_ascii_fallback_and_the_exact_utf8_name() -> None:
    assert content_disposition("My Song.WAV") == (
        "attachment; filename=\"My Song.mp3\"; filename*=UTF-8''My%20Song.mp3"
    )
    assert content_disposition('Ça "va".wav') == (
        "attachment; filename=\"_a _va_.mp3\"; filename*=UTF-8''%C3%87a%20%22va%22.mp3"
    )


@given(st.text())
def test_content_disposition_is_always_a_safe_header_value(name: str) -> None:
    value = content_disposition(name)
    assert value.isascii()
    assert "\r" not in value
    assert "\n" not in value
    assert value.count('"') == 2


def test_etag_matching_is_weak_and_understands_lists_and_star() -> None:
    assert etag_matches('"abc"', '"abc"')
    assert etag_matches('W/"abc"', '"abc"')
    assert etag_matches('"x", "abc"', '"abc"')
    assert etag_matches("*", '"abc"')
    assert not etag_matches('"abcd"', '"abc"')
    assert not etag_matches(None, '"abc"')


def test_http_date_is_gmt_whatever_the_zone() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone(timedelta(hours=2)))
    assert http_date(moment) == "Fri, 02 Jan 2026 01:04:05 GMT"
    assert http_date(moment.astimezone(UTC)) == "Fri, 02 Jan 2026 01:04:05 GMT"
