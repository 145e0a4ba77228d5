"""The benchmark's whole-body client (curl, else httpx / Python) and its CPU reading."""

import os
from pathlib import Path

import pytest

from bench.measure import BenchError, Fetcher, cpu_seconds
from bench.sendfile_server import serving

CLIENTS = [pytest.param(Fetcher.find(), id="curl"), pytest.param(Fetcher(None), id="no-curl")]


@pytest.mark.parametrize("fetcher", CLIENTS)
def test_fetch_reads_an_http_body_and_a_file_whole(fetcher: Fetcher, tmp_path: Path) -> None:
    served = tmp_path / "object"
    served.write_bytes(os.urandom(3 * 1024 * 1024))
    size = served.stat().st_size
    with serving(served) as server:
        assert fetcher.fetch(f"{server.url}/object", size).seconds > 0
    assert fetcher.fetch(served.as_uri(), size).seconds > 0


@pytest.mark.parametrize("fetcher", CLIENTS)
def test_fetch_of_fewer_bytes_than_expected_fails(fetcher: Fetcher, tmp_path: Path) -> None:
    served = tmp_path / "object"
    served.write_bytes(b"short")
    with pytest.raises(BenchError):
        fetcher.fetch(served.as_uri(), 6)


def test_fetch_of_a_missing_file_fails(tmp_path: Path) -> None:
    with pytest.raises((BenchError, OSError)):
        Fetcher.find().fetch((tmp_path / "missing").as_uri(), 1)


def test_describe_names_the_client() -> None:
    assert "curl" in Fetcher.find().describe()
    assert "httpx" in Fetcher(None).describe()


def test_cpu_seconds_grow_with_work() -> None:
    before = cpu_seconds(os.getpid())
    deadline = before + 0.05
    while cpu_seconds(os.getpid()) < deadline:
        sum(range(10_000))
    assert cpu_seconds(os.getpid()) >= deadline
