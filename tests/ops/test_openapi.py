"""/openapi.json describes API.md sections 1-5: every path, method and status, each error as
problem+json with the Problem schema, with summaries, tags and examples; /docs renders it."""

from typing import Any

import pytest

from testkit.gateways import Gateway

PROBLEM_JSON = "application/problem+json"
# API.md, sections 1-5: path → method → the statuses it documents (503 wherever a dependency is
# used: "transcoder, object storage or database unavailable").
CONTRACT: dict[str, dict[str, set[int]]] = {
    "/users": {"post": {201, 422, 503}},
    "/record": {
        "post": {201, 202, 401, 408, 413, 415, 422, 503, 504, 507},
        "get": {200, 206, 304, 404, 416, 422, 503},
        "head": {200, 206, 304, 404, 416, 422, 503},
        "delete": {204, 401, 404, 422, 503},
    },
    "/record/peaks": {"get": {200, 404, 422, 503}},  # section 9
    "/users/{user_id}/records": {"get": {200, 401, 422, 503}},
    "/healthz": {"get": {200}},
    "/readyz": {"get": {200, 503}},
    "/metrics": {"get": {200}},
    "/jobs/{job_id}": {"get": {200, 401, 404, 503}},
    "/jobs/{job_id}/events": {"get": {200, 401, 404, 503}},
    "/uploads/": {"options": {204}, "post": {201, 400, 401, 412, 413, 415, 503}},
    "/uploads/{upload_id}": {
        "head": {200, 401, 404, 410, 412, 503},
        "patch": {204, 400, 401, 404, 409, 410, 412, 413, 415, 460, 503},
        "delete": {204, 401, 404, 410, 412, 503},
    },
    # Section 8: webhooks.
    "/users/{user_id}/webhook": {
        "put": {200, 401, 422, 503},
        "delete": {204, 401, 404, 422, 503},
    },
    "/users/{user_id}/webhook/deliveries": {"get": {200, 401, 422, 503}},
}


@pytest.fixture(scope="module")
def document(gateway: Gateway) -> dict[str, Any]:
    with gateway.client() as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    schema: dict[str, Any] = response.json()
    return schema


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_path_method_and_status_of_the_contract_is_documented(
    document: dict[str, Any],
) -> None:
    documented = {
        path: {method: {int(status) for status in op["responses"]} for method, op in item.items()}
        for path, item in document["paths"].items()
    }
    assert {path: set(item) for path, item in documented.items()} == {
        path: set(item) for path, item in CONTRACT.items()
    }
    for path, item in CONTRACT.items():
        for method, statuses in item.items():
            # The contract only grows: statuses added since API.md v1 may be documented too.
            assert statuses <= documented[path][method], f"{method.upper()} {path}"


def test_every_error_response_is_problem_json_with_the_problem_schema_and_an_example(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert {"type", "title", "status", "detail", "errors"} <= schemas["Problem"][
        "properties"
    ].keys()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            assert list(response["content"]) == [PROBLEM_JSON], where
            media = response["content"][PROBLEM_JSON]
            reference = media["schema"]["$ref"]
            assert reference.rsplit("/", 1)[-1] in {"Problem", "NotReady"}, where
            examples = (
                [media["example"]]
                if "example" in media
                else [example["value"] for example in media["examples"].values()]
            )
            assert examples, where
            for example in examples:
                assert example["status"] == int(status), where
                assert {"type", "title", "detail"} <= example.keys(), where
    not_ready = schemas["NotReady"]["properties"]
    assert {"type", "title", "status", "detail", "checks", "failed"} <= not_ready.keys()


def test_validation_errors_document_their_errors_list(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        response = operation["responses"].get("422")
        if response is None:
            continue
        media = response["content"][PROBLEM_JSON]
        examples = (
            [media["example"]]
            if "example" in media
            else [example["value"] for example in media["examples"].values()]
        )
        assert any("errors" in example for example in examples), f"{method} {path}"


def test_every_operation_has_a_tag_summary_description_and_examples(
    document: dict[str, Any],
) -> None:
    tags = {tag["name"] for tag in document["tags"]}
    assert tags == {"users", "records", "uploads", "jobs", "webhooks", "operations"}
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        assert operation["tags"], where
        assert set(operation["tags"]) <= tags, where
        assert operation["summary"], where
        assert operation["description"], where
        for parameter in operation.get("parameters", []):
            if parameter["in"] in {"query", "path"} and parameter["required"]:
                assert parameter.get("examples") or parameter["schema"].get("examples"), (
                    f"{where} {parameter['name']}"
                )
        for status, response in operation["responses"].items():
            assert "X-Request-ID" in response["headers"], f"{where} {status}"
    schemas = document["components"]["schemas"]
    for name in ("UserCreate", "RecordOut", "Ready", "Health", "WebhookIn", "WebhookOut"):
        schema = schemas[name]
        assert schema.get("examples") or all(
            "examples" in field for field in schema["properties"].values()
        ), name
    upload_body = document["paths"]["/record"]["post"]["requestBody"]["content"]
    properties = upload_body["multipart/form-data"]["schema"]["properties"]
    assert {"user", "token", "file"} <= properties.keys()
    users_created = document["paths"]["/users"]["post"]["responses"]["201"]["content"]
    assert "example" in users_created["application/json"]
    listing = document["paths"]["/users/{user_id}/records"]["get"]["responses"]["200"]
    assert listing["content"]["application/json"]["example"]["items"]
    assert schemas["DeliveryOut"]["examples"][0]["webhook_id"].startswith("msg_")
    put_webhook = document["paths"]["/users/{user_id}/webhook"]["put"]["responses"]["422"]
    refused = put_webhook["content"][PROBLEM_JSON]["examples"]
    assert refused["webhook-target-refused"]["value"]["status"] == 422


def test_token_routes_declare_bearer_auth_and_401_carries_www_authenticate(
    document: dict[str, Any],
) -> None:
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, method in (
        ("/record", "post"),
        ("/record", "delete"),
        ("/users/{user_id}/records", "get"),
        ("/users/{user_id}/webhook", "put"),
        ("/users/{user_id}/webhook", "delete"),
        ("/users/{user_id}/webhook/deliveries", "get"),
    ):
        operation = document["paths"][path][method]
        assert operation["security"] == [{"bearer": []}]
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "Retry-After" in document["paths"]["/record"]["post"]["responses"]["503"]["headers"]


def test_docs_page_serves_the_description(gateway: Gateway) -> None:
    with gateway.client() as client:
        page = client.get("/docs")
    assert page.status_code == 200
    assert "/openapi.json" in page.text
