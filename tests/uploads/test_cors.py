"""CORS for browser tus clients (tus-js-client, Uppy): with CORS_ALLOW_ORIGINS, that origin's
pre-flights are allowed and answers expose the tus headers; any other origin, or a gateway
without the setting, gets no CORS headers at all."""

import httpx

from testkit.gateways import Gateway
from tests.uploads.tus import ORIGIN, TUS, WAV, bearer, create, new_user

# What tus-js-client sends on a PATCH; a pre-flight asks for all of it.
REQUEST_HEADERS = "authorization,content-type,tus-resumable,upload-checksum,upload-offset"
EXPOSED = {
    "location",
    "link",
    "upload-offset",
    "upload-length",
    "upload-metadata",
    "upload-expires",
    "tus-resumable",
    "tus-version",
    "tus-extension",
    "tus-max-size",
    "tus-checksum-algorithm",
    "x-request-id",
}


def preflight(client: httpx.Client, path: str, origin: str, method: str) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": REQUEST_HEADERS,
        },
    )


def exposed(response: httpx.Response) -> set[str]:
    header = response.headers.get("Access-Control-Expose-Headers", "")
    return {name.strip().lower() for name in header.split(",") if name.strip()}


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-")]


def allowed_origin(response: httpx.Response) -> str | None:
    """What lets a browser page read the answer at all. (Starlette also sends the expose, method
    and header lists to other origins; without ``Allow-Origin`` a browser ignores them.)"""
    origin: str | None = response.headers.get("Access-Control-Allow-Origin")
    return origin


def test_a_preflight_from_the_allowed_origin_is_allowed_without_credentials(
    replicas: tuple[Gateway, Gateway],
) -> None:
    with replicas[0].client() as client:
        for path, method in (("/uploads/", "POST"), ("/uploads/some-id", "PATCH")):
            response = preflight(client, path, ORIGIN, method)
            assert response.status_code in (200, 204), response.text
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert method in response.headers["Access-Control-Allow-Methods"]
            allowed = response.headers["Access-Control-Allow-Headers"].lower()
            assert set(REQUEST_HEADERS.split(",")) <= {h.strip() for h in allowed.split(",")}


def test_answers_to_the_allowed_origin_expose_the_tus_headers_location_link_and_request_id(
    replicas: tuple[Gateway, Gateway],
) -> None:
    with replicas[0].client(headers={"Origin": ORIGIN}) as client:
        user = new_user(client)
        answers = [create(client, user, length=len(WAV), body=WAV[:100])]
        location = answers[0].headers["Location"]
        answers.append(client.head(location, headers={**TUS, **bearer(user)}))
        answers.append(client.options("/uploads/"))
        answers.append(create(client, user, length=len(WAV), headers={"Authorization": ""}))
        for response in answers:
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN, response
            assert exposed(response) >= EXPOSED, response
        assert answers[-1].status_code == 401  # a problem the page can read too


def test_other_origins_are_not_allowed(replicas: tuple[Gateway, Gateway]) -> None:
    with replicas[0].client() as client:
        refused = preflight(client, "/uploads/", "https://evil.example", "POST")
        assert refused.status_code == 400
        assert allowed_origin(refused) is None
        user = new_user(client)
        response = create(client, user, length=len(WAV), headers={"Origin": "https://evil.example"})
        assert response.status_code == 201  # not a browser: CORS does not stop it, but
        assert allowed_origin(response) is None  # a browser would not let the page read it


def test_without_cors_allow_origins_there_is_no_cors_at_all(client: httpx.Client) -> None:
    response = preflight(client, "/uploads/", ORIGIN, "POST")
    assert response.status_code == 204  # the tus discovery answer, nothing for CORS
    assert cors_headers(response) == []
    user = new_user(client)
    created = create(client, user, length=len(WAV), headers={"Origin": ORIGIN})
    assert created.status_code == 201
    assert cors_headers(created) == []
