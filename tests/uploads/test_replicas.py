"""Any replica continues any upload: two gateway processes share one PostgreSQL database and one
S3 bucket; tuspy starts an upload on replica A, resumes it from HEAD on replica B."""

import uuid
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient

from testkit.gateways import Gateway
from testkit.wavcorpus import pcm
from tests.uploads.tus import finished_job, head, new_user, upload_keys

CHUNK = 64 * 1024


def test_an_upload_begun_on_one_replica_is_finished_on_the_other_into_one_record(
    replicas: tuple[Gateway, Gateway], tmp_path: Path
) -> None:
    first, second = replicas
    wav = pcm(3.0)
    path = tmp_path / "take.wav"
    path.write_bytes(wav)
    half = len(wav) // 2
    with first.client() as client_a, second.client() as client_b, path.open("rb") as stream:
        user = new_user(client_a)
        auth = {"Authorization": f"Bearer {user['token']}"}
        metadata = {"user": user["id"], "filename": "take.wav"}
        on_a = TusClient(f"{first.url}/uploads/", headers=auth).uploader(
            file_stream=stream, chunk_size=CHUNK, metadata=metadata
        )
        on_a.upload(stop_at=half)  # then replica A is "gone" for this client
        assert on_a.url is not None
        upload = uuid.UUID(on_a.url.rsplit("/", 1)[-1])
        assert upload_keys(first, upload)  # the chunks are in the shared bucket

        path_of_upload = httpx.URL(on_a.url).path
        assert head(client_b, path_of_upload, user).headers["Upload-Offset"] == str(half)
        on_b = TusClient(f"{second.url}/uploads/", headers=auth).uploader(
            file_stream=stream, chunk_size=CHUNK, url=f"{second.url}{path_of_upload}"
        )
        assert on_b.offset == half  # tuspy asked B's HEAD where to go on
        on_b.upload()
        link = on_b.request.response_headers["link"]
        assert link == f'<{second.url}/jobs/{upload}>; rel="monitor"'

        job = finished_job(client_b, user, f"/jobs/{upload}")
        assert job["status"] == "succeeded", job
        assert job["record"]["duration_seconds"] == pytest.approx(3.0, abs=0.05)
        on_first = finished_job(client_a, user, f"/jobs/{upload}")  # either replica knows it
        assert on_first["record"]["id"] == job["record"]["id"]
        assert client_a.get(on_first["record"]["url"]).status_code == 200
    assert first.record_count(user["id"]) == 1
    assert len(first.object_keys(user["id"])) == 2  # the MP3 and its peaks
