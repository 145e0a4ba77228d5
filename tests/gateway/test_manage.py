"""Listing and deleting recordings (token required)."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from testkit.api import new_user, upload
from testkit.gateways import Gateway
from testkit.problems import assert_problem
from testkit.wavcorpus import pcm


def add_records(client: httpx.Client, user: dict[str, str], count: int) -> list[str]:
    wav = pcm(0.1, channels=1)
    ids = []
    for index in range(count):
        response = upload(client, user, wav, filename=f"take{index}.wav", token=user["token"])
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_listing_pages_newest_first_with_an_opaque_cursor(client: httpx.Client) -> None:
    user = new_user(client)
    ids = add_records(client, user, 5)
    auth = {"Authorization": f"Bearer {user['token']}"}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/users/{user['id']}/records", params=params, headers=auth)
        assert page.status_code == 200, page.text
        body = page.json()
        pages += 1
        for item in body["items"]:
            assert {
                "id",
                "user",
                "url",
                "duration_seconds",
                "size_bytes",
                "content_type",
                "original_filename",
                "created_at",
            } <= item.keys()
            assert item["created_at"].endswith(("Z", "+00:00"))
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(ids))
    first = client.get(f"/users/{user['id']}/records", params={"token": user["token"]}).json()
    assert first["items"][0]["original_filename"] == "take4.wav"
    assert first["next_cursor"] is None


def test_listing_another_users_records_needs_that_users_token(client: httpx.Client) -> None:
    user, other = new_user(client), new_user(client)
    for token in (None, other["token"], "junk", str(uuid.uuid4())):
        params = {"token": token} if token else {}
        response = client.get(f"/users/{user['id']}/records", params=params)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_limits_and_cursors_are_422(client: httpx.Client) -> None:
    user = new_user(client)
    url = f"/users/{user['id']}/records"
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "@@not-ours"}):
        assert_problem(client.get(url, params={**params, "token": user["token"]}), 422)


def test_delete_removes_row_and_object_then_downloads_are_404(
    gateway: Gateway, client: httpx.Client
) -> None:
    user = new_user(client)
    [record_id] = add_records(client, user, 1)
    params = {"id": record_id, "user": user["id"]}
    assert client.get("/record", params=params).status_code == 200
    response = client.delete("/record", params={**params, "token": user["token"]})
    assert response.status_code == 204
    assert_problem(client.get("/record", params=params), 404)
    assert gateway.record_count(user["id"]) == 0
    assert gateway.object_keys(user["id"]) == []


def test_deleting_another_users_record_is_404_and_it_stays(
    gateway: Gateway, client: httpx.Client
) -> None:
    owner, intruder = new_user(client), new_user(client)
    [record_id] = add_records(client, owner, 1)
    response = client.delete(
        "/record",
        params={"id": record_id, "user": intruder["id"]},
        headers={"Authorization": f"Bearer {intruder['token']}"},
    )
    assert_problem(response, 404)
    assert_problem(
        client.delete(
            "/record", params={"id": record_id, "user": owner["id"], "token": intruder["token"]}
        ),
        401,
    )
    assert gateway.record_count(owner["id"]) == 1
    assert client.get("/record", params={"id": record_id, "user": owner["id"]}).status_code == 200


def test_two_deletes_at_once_are_one_204_and_one_404(gateway: Gateway) -> None:
    with gateway.client() as client:
        user = new_user(client)
        [record_id] = add_records(client, user, 1)

    def delete() -> int:
        with gateway.client() as own:
            return own.delete(
                "/record", params={"id": record_id, "user": user["id"], "token": user["token"]}
            ).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(lambda _: delete(), range(2)))
    assert statuses == [204, 404]
    assert gateway.object_keys(user["id"]) == []


def test_paging_while_uploads_arrive_shows_every_earlier_record_exactly_once(
    gateway: Gateway,
) -> None:
    with gateway.client() as client:
        user = new_user(client)
        before = add_records(client, user, 7)
        arrived: list[str] = []

        def keep_uploading() -> None:
            with gateway.client() as uploader:
                arrived.extend(add_records(uploader, user, 4))

        seen: list[str] = []
        cursor = None
        with ThreadPoolExecutor(1) as pool:
            uploads = pool.submit(keep_uploading)
            while True:
                params: dict[str, str | int] = {"limit": 2, "token": user["token"]}
                if cursor:
                    params["cursor"] = cursor
                body = client.get(f"/users/{user['id']}/records", params=params).json()
                seen += [item["id"] for item in body["items"]]
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            uploads.result()
    # Keyset pages never repeat or skip: every record that existed when paging began is seen
    # exactly once, in newest-first order; records added meanwhile may appear as well.
    assert len(seen) == len(set(seen))
    earlier = [record_id for record_id in seen if record_id in before]
    assert earlier == list(reversed(before))
    assert set(seen) - set(before) <= set(arrived)
