"""The benchmark's HTTP ceiling: a minimal server that sends one file whole with os.sendfile."""

from pathlib import Path

import httpx

from bench.sendfile_server import serving


def test_every_get_on_one_connection_answers_the_whole_file(tmp_path: Path) -> None:
    served = tmp_path / "object"
    served.write_bytes(bytes(range(256)) * 4096)
    with serving(served) as server, httpx.Client(base_url=server.url) as client:
        first = client.get("/object")
        second = client.get("/any/other/target")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content == served.read_bytes()
    assert first.headers["Content-Length"] == str(served.stat().st_size)
