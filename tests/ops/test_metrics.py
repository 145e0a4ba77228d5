"""/metrics on both services: the numbers move with the requests made (exact deltas).

In process (each app has a registry of its own), but for the gateway whose transcoder is down:
a live one, pointed at a port where nothing listens."""

import uuid
from collections.abc import Iterator

import httpx
import pytest

from testkit.api import new_user
from testkit.gateways import GatewayFactory, OpsGateway
from testkit.inprocess import transcoder_client
from testkit.live import free_port
from testkit.scrape import scrape, value
from testkit.wavcorpus import pcm
from transcoder.config import Settings as TranscoderSettings

LIST_ROUTE = "/users/{user_id}/records"


@pytest.fixture(scope="module")
def client(in_process_gateway: GatewayFactory) -> Iterator[httpx.Client]:
    """A gateway of this module's own, so no other test's requests enter the counts."""
    with in_process_gateway() as gateway, gateway.client() as http:
        yield http


def upload_request(
    client: httpx.Client, user: dict[str, str], content: bytes, token: str | None
) -> httpx.Request:
    data = {"user": user["id"], **({"token": token} if token else {})}
    request = client.build_request(
        "POST", "/record", data=data, files={"file": ("take.wav", content, "audio/wav")}
    )
    request.read()  # the body is known before it is sent, to compare with the bytes counted
    return request


def test_requests_are_counted_and_timed_by_route_template_and_status(
    client: httpx.Client,
) -> None:
    before = scrape(client)
    user = new_user(client)
    for _ in range(3):
        listed = client.get(f"/users/{user['id']}/records", params={"token": user["token"]})
        assert listed.status_code == 200
    assert client.get(f"/users/{user['id']}/records", params={"token": "wrong"}).status_code == 401
    assert client.get(f"/no/such/{uuid.uuid4()}").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "riffle_http_requests_total"
    assert delta(requests, method="POST", route="/users", status="201") == 1
    assert delta(requests, method="GET", route=LIST_ROUTE, status="200") == 3
    assert delta(requests, method="GET", route=LIST_ROUTE, status="401") == 1
    assert delta(requests, method="GET", route="unmatched", status="404") == 1
    latency = "riffle_http_request_duration_seconds"
    assert delta(f"{latency}_count", method="GET", route=LIST_ROUTE, status="200") == 3
    assert delta(f"{latency}_sum", method="GET", route=LIST_ROUTE, status="200") > 0
    assert delta(f"{latency}_bucket", method="GET", route=LIST_ROUTE, status="200", le="+Inf") == 3
    # Route templates, never raw paths: no id makes a label value.
    labels = {label for _name, pairs in after for _key, label in pairs}
    assert not any(user["id"] in label for label in labels)


def test_an_upload_counts_bytes_received_transcode_time_audio_seconds_and_bytes_stored(
    client: httpx.Client,
) -> None:
    user = new_user(client)
    before = scrape(client)
    request = upload_request(client, user, pcm(1.5), user["token"])
    created = client.send(request)
    assert created.status_code == 201, created.text
    record = created.json()
    download = client.get(record["url"])
    assert download.status_code == 200
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    received = "riffle_http_received_bytes_total"
    assert delta(received, method="POST", route="/record") == len(request.content)
    assert delta("riffle_http_sent_bytes_total", method="GET", route="/record") == len(
        download.content
    )
    assert delta("riffle_stored_bytes_total") == record["size_bytes"]
    assert delta("riffle_transcode_duration_seconds_count") == 1
    assert delta("riffle_transcode_duration_seconds_sum") > 0
    assert delta("riffle_audio_transcoded_seconds_total") == pytest.approx(1.5, abs=0.05)
    assert delta("riffle_http_requests_total", method="POST", route="/record", status="201") == 1


def test_rejected_uploads_are_counted_by_status_and_reason(client: httpx.Client) -> None:
    user = new_user(client)
    before = scrape(client)
    assert client.send(upload_request(client, user, b"not a wav", user["token"])).status_code == 415
    for token in ("wrong", str(uuid.uuid4())):
        assert client.send(upload_request(client, user, pcm(0.1), token)).status_code == 401
    assert client.post("/record", data={"user": user["id"]}).status_code == 422
    # Errors of other routes are not rejected uploads.
    assert client.get(f"/users/{user['id']}/records").status_code == 401
    after = scrape(client)

    def rejected(status: str, reason: str) -> float:
        name = "riffle_uploads_rejected_total"
        return value(after, name, status=status, reason=reason) - value(
            before, name, status=status, reason=reason
        )

    assert rejected("415", "not-a-wav") == 1
    assert rejected("401", "invalid-credentials") == 2
    assert rejected("422", "validation-error") == 1
    total = sum(v for (name, _), v in after.items() if name == "riffle_uploads_rejected_total")
    total -= sum(v for (name, _), v in before.items() if name == "riffle_uploads_rejected_total")
    assert total == 4


def test_dependency_errors_are_counted_by_kind_and_readiness_sets_dependency_up(
    ops_gateway: OpsGateway,
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with (
        ops_gateway(TRANSCODER_URL=dead) as url,
        httpx.Client(base_url=url, timeout=60) as gateway,
    ):
        user = new_user(gateway)
        before = scrape(gateway)
        for _ in range(2):
            response = gateway.send(upload_request(gateway, user, pcm(0.1), user["token"]))
            assert response.status_code == 503, response.text
        assert gateway.get("/readyz").status_code == 503
        after = scrape(gateway)
    errors = "riffle_dependency_errors_total"
    assert (
        value(after, errors, dependency="transcoder")
        - value(before, errors, dependency="transcoder")
        == 2
    )
    assert value(after, errors, dependency="database") == value(
        before, errors, dependency="database"
    )
    assert (
        value(after, "riffle_uploads_rejected_total", status="503", reason="dependency-unavailable")
        == 2
    )
    assert value(after, "riffle_dependency_up", dependency="transcoder") == 0
    assert value(after, "riffle_dependency_up", dependency="database") == 1
    assert value(after, "riffle_dependency_up", dependency="storage") == 1


def test_transcoder_metrics_count_encodes_audio_seconds_bytes_and_failures() -> None:
    wav = pcm(1.0)
    with transcoder_client(TranscoderSettings()) as transcoder:
        before = scrape(transcoder)
        assert transcoder.post("/transcode", content=wav).status_code == 200
        assert transcoder.post("/transcode", content=b"RIFF nonsense").status_code == 415
        after = scrape(transcoder)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "riffle_transcoder_http_requests_total"
    assert delta(requests, method="POST", route="/transcode", status="200") == 1
    assert delta(requests, method="POST", route="/transcode", status="415") == 1
    assert delta("riffle_transcoder_encode_duration_seconds_count") == 1
    assert delta("riffle_transcoder_audio_seconds_total") == pytest.approx(1.0, abs=0.05)
    received = delta(
        "riffle_transcoder_http_received_bytes_total", method="POST", route="/transcode"
    )
    assert received == len(wav) + len(b"RIFF nonsense")
    assert delta("riffle_transcoder_failures_total", status="415", reason="not-a-wav") == 1
