"""Webhooks end to end: live gateways and workers, a real receiver that verifies every delivery
with the ``standardwebhooks`` library, failures caused for real (nobody listening, a 500, an
answer that never comes)."""

import itertools
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from testkit.gateways import BACKENDS, GatewayFactory
from testkit.jobstack import GATEWAY_APP, WORKER_APP, JobStack, finished, new_user, submit
from testkit.live import running, wait_until
from testkit.wavcorpus import garbage_adpcm, pcm
from tests.webhooks.hooks import (
    auth,
    deliveries,
    put_webhook,
    set_webhook,
    upload,
    wait_for_deliveries,
)
from tests.webhooks.receiver import HANG, Receiver

REFUSED = "https://riffle.dev/problems/webhook-target-refused"
RETRIES = [0.3, 0.5, 0.8, 1.0, 1.0]
FAST_RETRIES = {
    "WEBHOOK_RETRY_SECONDS": ",".join(map(str, RETRIES)),
    "WEBHOOK_TIMEOUT_SECONDS": "0.6",
}
PRIVATE_ALLOWED = {"WEBHOOK_ALLOW_PRIVATE": "true"}


def _at(entry: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))


def test_a_failing_receiver_gets_the_event_later_with_the_same_webhook_id_and_valid_signatures(
    hook_stack: JobStack, tmp_path: Path
) -> None:
    # The worker tier delivers (the gateway runs no jobs): refused connections (nobody listens
    # yet), then a 500, then an answer that never comes, then 204.
    logs = tmp_path / "logs.txt"
    receiver = Receiver(plan=[500, HANG])
    env = hook_stack.env(**PRIVATE_ALLOWED, **FAST_RETRIES)
    with (
        running(GATEWAY_APP, {**env, "JOB_WORKERS": "0"}, output=logs) as gateway,
        running(WORKER_APP, {**env, "JOB_WORKERS": "1"}, output=logs),
    ):
        user = new_user(gateway.url)
        receiver.secret = secret = set_webhook(gateway.url, user, receiver.url)
        assert secret.startswith("whsec_")
        record = upload(gateway.url, user, pcm(0.5))

        [pending] = wait_for_deliveries(gateway.url, user, 1, done=False)
        wait_until(lambda: deliveries(gateway.url, user)[0]["attempts"] >= 1, what="attempt 1")
        with receiver:  # listening from now on
            [delivery] = wait_for_deliveries(gateway.url, user, 1, seconds=20)

    log = delivery["attempt_log"]
    refused = [entry for entry in log if entry["status"] is None and "Connect" in entry["error"]]
    assert len(refused) >= 1, log
    assert refused == log[: len(refused)], log
    rest = log[len(refused) :]
    assert [entry["status"] for entry in rest] == [500, None, 204], log
    assert "0.6 s" in rest[1]["error"], rest[1]  # the timeout
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == len(log)
    assert delivery["last_status"] == 204
    assert delivery["next_attempt_at"] is None
    # Each retry waited its delay of WEBHOOK_RETRY_SECONDS (jitter: ±10 %).
    gaps = [(_at(b) - _at(a)).total_seconds() for a, b in itertools.pairwise(log)]
    for gap, delay in zip(gaps, RETRIES, strict=False):
        assert gap >= delay * 0.9, (gaps, RETRIES)

    arrivals = receiver.received()
    assert len(arrivals) == 3
    assert [arrival.verify_error for arrival in arrivals] == [None, None, None]
    assert {arrival.headers["webhook-id"] for arrival in arrivals} == {delivery["webhook_id"]}
    assert delivery["webhook_id"] == pending["webhook_id"]
    assert len({arrival.body for arrival in arrivals}) == 1  # the same bytes every time
    assert all(arrival.headers["webhook-signature"].startswith("v1,") for arrival in arrivals)
    event = arrivals[-1].event
    assert event is not None
    assert event["type"] == "record.created"
    assert event["data"] == record
    assert event == delivery["payload"]
    # The secret is never logged, by the gateway or the worker.
    assert secret.removeprefix("whsec_") not in logs.read_text(errors="replace")


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_made_by_upload_and_by_job_and_a_failed_job_are_each_announced_once(
    start_gateway: GatewayFactory, backend: str
) -> None:
    env = {**PRIVATE_ALLOWED, **FAST_RETRIES, "JOB_POLL_SECONDS": "0.1"}
    with Receiver() as receiver, start_gateway(backend, **env) as gateway:
        user = new_user(gateway.url)
        receiver.secret = set_webhook(gateway.url, user, receiver.url)
        synchronous = upload(gateway.url, user, pcm(0.5))
        accepted = submit(gateway.url, user, pcm(0.5)).json()
        corrupt = submit(gateway.url, user, garbage_adpcm()).json()
        made = finished(gateway.url, user, str(accepted["id"]))
        failed = finished(gateway.url, user, str(corrupt["id"]))
        log = wait_for_deliveries(gateway.url, user, 3)
        rotated = set_webhook(gateway.url, user, receiver.url)
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            path = f"/users/{user['id']}/webhook"
            stranger = new_user(gateway.url)
            assert client.get(f"{path}/deliveries", headers=auth(stranger)).status_code == 401
            assert client.delete(path, headers=auth(stranger)).status_code == 401
            assert client.delete(path, headers=auth(user)).status_code == 204
            assert client.delete(path, headers=auth(user)).status_code == 404

    assert rotated != receiver.secret
    assert rotated.startswith("whsec_")

    assert made["status"] == "succeeded"
    assert failed["status"] == "failed"
    events = [arrival.event for arrival in receiver.received()]
    assert [arrival.verify_error for arrival in receiver.received()] == [None] * 3
    by_data = {(event["type"], event["data"]["id"]): event["data"] for event in events if event}
    assert by_data == {
        ("record.created", synchronous["id"]): synchronous,
        ("record.created", made["record"]["id"]): made["record"],  # type: ignore[index]
        ("job.failed", failed["id"]): failed,
    }
    assert failed["error"] is not None
    assert [(item["status"], item["attempts"], item["last_status"]) for item in log] == [
        ("succeeded", 1, 204)
    ] * 3
    assert sorted(item["event"] for item in log) == ["job.failed", *["record.created"] * 2]


def test_non_public_targets_are_refused_at_put_and_again_at_delivery(
    hook_stack: JobStack,
) -> None:
    # Set while private targets were allowed, delivered by a gateway that refuses them: the
    # check at delivery resolves the name again (to 127.0.0.1 now, as a rebinding name would)
    # and sends nothing.
    with Receiver() as receiver:
        target = receiver.url.replace("127.0.0.1", "localhost")
        with hook_stack.gateway(**PRIVATE_ALLOWED) as gateway:
            user = new_user(gateway.url)
            receiver.secret = set_webhook(gateway.url, user, target)
        env = {"JOB_WORKERS": "1", "WEBHOOK_RETRY_SECONDS": "0.1"}
        with hook_stack.gateway(**env) as gateway:
            upload(gateway.url, user, pcm(0.5))
            other = new_user(gateway.url)
            for refused in [
                "http://127.0.0.1:9/hooks",
                target,  # a name that resolves to loopback
                "http://[::1]/",
                "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
                "http://10.1.2.3/",
                "http://192.168.0.10/",
                "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
                "http://0.0.0.0:8000/",
                "http://224.0.0.1/",
            ]:
                response = put_webhook(gateway.url, other, refused)
                assert response.status_code == 422, (refused, response.text)
                assert response.json()["type"] == REFUSED, refused
            for invalid in ["ftp://example.com/", "file:///etc/passwd", "https://u:p@example.com/"]:
                response = put_webhook(gateway.url, other, invalid)
                assert response.status_code == 422, (invalid, response.text)
                assert response.json()["type"].endswith("/validation-error"), invalid
            [delivery] = wait_for_deliveries(gateway.url, user, 1)
            assert deliveries(gateway.url, other) == []

    assert delivery["status"] == "failed"
    assert delivery["attempts"] == 2
    for entry in delivery["attempt_log"]:
        assert entry["status"] is None
        assert entry["error"].startswith("Refused: "), entry
        assert "loopback" in entry["error"], entry
    assert receiver.received() == []
