"""Inputs a fuzzer or an attacker sends: each is a 4xx in the API's error format naming the field, never a 500.

The shared layers are exercised on every operation the OpenAPI schema lists (the JSON parser on every operation
with a body, the cursor pagination on every cursor list), and the time parser at each place a time comes in.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from accounts.services import token_create
from catalog import services as catalog_services
from steward.identity import Role
from tests.conftest import make_user
from tests.lineage.events import NS, at, dataset

DEEP = "[" * 1000 + "]" * 1000  # about 2 KB
TIMES = {  # an impossible or unrepresentable time -> the code the API answers with
    "0001-01-01T00:00:00+01:00": "out_of_range",
    "9999-12-31T23:30:00-01:00": "out_of_range",
    "2026-01-01T12:99:00Z": "invalid_datetime",
    "2026-13-01T00:00:00Z": "invalid_datetime",
    "2026-01-01T00:00:60Z": "invalid_datetime",
    "2026-01-01T00:00:00+24:00": "invalid_datetime",
}


@pytest.fixture
def root(db) -> User:
    """One user with every role, so that permission checks let each request reach its parsing."""
    return make_user("root", *[role.value for role in Role])


@pytest.fixture
def api(root) -> APIClient:
    client = APIClient()
    client.force_login(root)
    return client


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)


def assert_refused(res: Any, field: str, code: str | None = None, status: int = 400) -> None:
    assert res.status_code == status, (res.status_code, res.content[:400])
    body = res.json()
    assert body["status"] == status
    fields = {(e["field"], e["code"]) for e in body["errors"]}
    assert any(f == field and (code is None or c == code) for f, c in fields), fields


# --- one JSON parser ---------------------------------------------------------------------------------------------


def test_json_nested_1000_deep_is_a_400_on_every_operation_with_a_body(api):
    seen = 0
    for path, method, op in operations():
        if "requestBody" not in op:
            continue
        url = concrete(path, {})
        res = getattr(api, method)(url, data=DEEP, content_type="application/json")
        assert res.status_code < 500, (method, url, res.status_code, res.content[:300])
        if "{" not in path:  # no object to look up first: the body is what is refused
            assert_refused(res, "body", "too_deep")
            seen += 1
    assert seen >= 15


def test_json_nested_1000_deep_to_the_decision_fast_path_is_a_400(root, settings):
    from steward.wsgi import application

    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 0
    secret = token_create(actor=root, user=root, name="proxy")[1]
    for path, body in (("/api/v1/authorize", DEEP), ("/api/v1/authorize/batch", '{"requests": ' + DEEP + "}")):
        for payload, field, code in ((body, "body", "too_deep"), ('{"subject": "a\\ud800b"}', "subject", None)):
            data = payload.encode()
            environ = {
                "REQUEST_METHOD": "POST",
                "PATH_INFO": path,
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(data)),
                "wsgi.input": io.BytesIO(data),
                "wsgi.url_scheme": "http",
                "wsgi.errors": io.StringIO(),
                "SERVER_NAME": "testserver",
                "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "HTTP_AUTHORIZATION": f"Bearer {secret}",
            }
            seen: dict[str, Any] = {}

            def start_response(status: str, headers: list[tuple[str, str]], seen: dict = seen) -> None:
                seen["status"] = int(status.split()[0])

            request_started.disconnect(close_old_connections)
            request_finished.disconnect(close_old_connections)
            try:
                answer = json.loads(b"".join(application(environ, start_response)))
            finally:
                request_started.connect(close_old_connections)
                request_finished.connect(close_old_connections)
            assert seen["status"] == 400, answer
            assert any(e["field"] == field and code in (None, e["code"]) for e in answer["errors"]), answer


@pytest.mark.parametrize(
    ("url", "body", "field", "code"),
    [
        ("/api/v1/datasets", '{"namespace": "postgres://w:5432", "name": "a\\ud800b"}', "name", "invalid_unicode"),
        ("/api/v1/tags", '{"key": "k", "description": "\\udfff"}', "description", "invalid_unicode"),
        ("/api/v1/lineage", '{"eventType": "COMPLETE", "job": {"name": "j\\ud800"}}', "job.name", "invalid_unicode"),
        ("/api/v1/lineage/batch", '{"events": [{"producer": "\\ud800"}]}', "events[0].producer", "invalid_unicode"),
        ("/api/v1/datasets", '{"namespace": "postgres://w:5432", "name": "a\\u0000b"}', "name", "invalid"),
        ("/api/v1/lineage", '{"eventType": "COMPLETE", "job": {"name": "j\\u0000"}}', "job.name", "invalid"),
        ("/api/v1/lineage", '{"eventType": "COMPLETE", "run": {"facets": {"x\\u0000": 1}}}', "run.facets", "invalid"),
    ],
)
def test_a_lone_surrogate_or_nul_in_a_json_string_is_a_400_naming_where(api, url, body, field, code):
    res = api.post(url, data=body, content_type="application/json")
    assert_refused(res, field, code)
    assert res.json()["code"] == "validation_error"


def test_valid_surrogate_pairs_still_pass(api, data_steward):
    res = api.post(
        "/api/v1/datasets",
        data='{"namespace": "postgres://w:5432", "name": "emoji", "description": "\\ud83d\\ude00"}',
        content_type="application/json",
    )
    assert res.status_code == 201, res.content
    assert res.json()["description"] == "\U0001f600"


# --- one time parser ---------------------------------------------------------------------------------------------


@pytest.fixture
def the_dataset(root, tags) -> Any:
    from tests.conftest import spec

    return catalog_services.dataset_create(actor=root, spec=spec({"namespace": NS, "name": "orders"}))


@pytest.mark.parametrize(("value", "code"), TIMES.items())
def test_impossible_and_out_of_range_times_in_queries_are_a_400(api, the_dataset, value, code):
    for url, field in (
        (f"/api/v1/datasets/{the_dataset.pk}/tags", "at"),
        (f"/api/v1/datasets/{the_dataset.pk}/explain", "at"),
        (f"/api/v1/lineage/graph?namespace={NS}&name=orders&", "at"),
        ("/api/v1/compliance/reconstruct?", "at"),
        ("/api/v1/audit?", "since"),
        ("/api/v1/audit?", "until"),
        ("/api/v1/deployments?", "at"),
        ("/api/v1/results?", "from"),
    ):
        sep = "" if url.endswith(("?", "&")) else "?"
        res = api.get(f"{url}{sep}{field}={value.replace('+', '%2B')}")
        assert res.status_code != 200, (url, field, res.content[:200])
        assert_refused(res, field, code)


@pytest.mark.parametrize(("value", "code"), TIMES.items())
def test_impossible_and_out_of_range_times_in_bodies_are_a_400(api, value, code, django_capture_on_commit_callbacks):
    event = {
        "eventType": "COMPLETE",
        "eventTime": value,
        "producer": "https://example.org/p",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "ns", "name": "job"},
        "outputs": [dataset("out")],
    }
    assert_refused(api.post("/api/v1/lineage", event), "eventTime", code)
    assert_refused(api.post("/api/v1/lineage/batch", {"events": [event]}), "events[0].eventTime", code)
    record = {"model": "m", "produced_at": value, "input_ref": "s3://in/1", "output_digest": "d"}
    assert_refused(api.post("/api/v1/results", {"records": [record]}), "records[0].produced_at", code)
    question = {"subject": "root", "action": "read", "asset": str(uuid.uuid4()), "at": value}
    assert_refused(api.post("/api/v1/authorize", question), "at", code)


def test_an_ordinary_event_time_still_passes(api):
    event = {
        "eventType": "COMPLETE",
        "eventTime": at(1).replace("Z", "+05:30"),
        "producer": "https://example.org/p",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": "ns", "name": "job"},
        "outputs": [dataset("out")],
    }
    assert api.post("/api/v1/lineage", event).status_code == 201


def test_nul_in_a_query_parameter_or_path_is_a_400_naming_it_on_every_get(api):
    for path, method, op in operations():
        if method != "get":
            continue
        params = {p["name"]: "a\x00b" for p in op.get("parameters", []) if p["in"] == "query"}
        url = concrete(path, {})
        for name in params:
            assert_refused(api.get(url, {name: params[name]}), name, "invalid")
    assert_refused(api.get("/api/v1/tags/a%00b"), "path", "invalid")


# --- one cursor pagination ---------------------------------------------------------------------------------------


def test_a_crafted_cursor_is_a_400_naming_it_on_every_cursor_list(api, the_dataset):
    ids = {"id": str(the_dataset.pk)}
    lists = [
        (path, concrete(path, ids))
        for path, method, op in operations()
        if method == "get" and any(p.get("name") == "cursor" for p in op.get("parameters", []))
    ]
    assert len(lists) >= 12, lists
    refused = set()
    for path, url in lists:
        for cursor in ("cD1qdW5r", "cD0lMDA=", "bz0xMCZwPXh4", "YQ"):  # p=junk, p=NUL, o=10&p=xx, bad padding
            res = api.get(url, {"cursor": cursor})
            if res.status_code == 200 and cursor != "YQ":  # "junk" is a position in a list ordered by name
                continue
            if res.status_code == 404 and "{" in path:  # the list of an object that does not exist
                continue
            assert_refused(res, "cursor")
            refused.add(url)
    assert len(refused) >= 12, {url for _, url in lists} - refused


def test_real_cursors_still_page(api, root, tags):
    from tests.conftest import spec

    for n in range(3):
        catalog_services.dataset_create(actor=root, spec=spec({"namespace": NS, "name": f"t{n}"}))
    first = api.get("/api/v1/datasets", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    assert [d["name"] for d in first["results"] + second["results"]] == ["t0", "t1", "t2"]


# --- the rest of the list ------------------------------------------------------------------------------------------


def test_options_answers_on_every_api_path(api):
    for path, _method, _op in operations():
        res = api.options(concrete(path, {}))
        assert res.status_code < 500, (path, res.status_code, res.content[:300])
    res = api.options("/api/v1/compliance/reports")
    assert res.status_code == 200
    assert res.json()["name"]


def test_html_token_revoke_with_a_36_character_non_uuid_is_a_404(root):
    from django.test import Client

    client = Client()
    client.force_login(root)
    assert client.post("/tokens/" + "x" * 36 + "/revoke").status_code == 404
    assert client.post("/tokens/" + "z" * 8 + "-" + "z" * 27 + "/revoke").status_code == 404


def test_search_says_whether_its_total_is_exact(api, the_dataset):
    body = api.get("/api/v1/search", {"q": "orders"}).json()
    assert body["total_is_exact"] is True
    assert isinstance(body["total"], int)


def test_model_versions_are_paginated_as_the_schema_says(api, root):
    model = catalog_services.model_create(actor=root, name="churn")
    for v in ("1", "2", "3"):
        catalog_services.model_version_create(actor=root, model=model, version=v, artifact_uri=f"s3://m/{v}")
    first = api.get(f"/api/v1/models/{model.pk}/versions", {"page_size": 2}).json()
    assert [v["version"] for v in first["results"]] == ["3", "2"]
    assert [v["version"] for v in api.get(first["next"]).json()["results"]] == ["1"]


# --- the schema documents the errors -------------------------------------------------------------------------------


def test_the_schema_documents_each_operations_errors_in_the_error_format():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"status", "code", "detail", "errors"}
    for path, method, op in operations():
        documented = set(op["responses"])
        assert {"401", "403"} <= documented, (method, path)
        if "{" in path:
            assert "404" in documented, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= documented, (method, path)
        if method in ("post", "put", "patch", "delete"):
            assert "409" in documented, (method, path)
        for code in documented - {"200", "201", "202", "204"}:
            assert op["responses"][code]["$ref"].startswith("#/components/responses/"), (method, path, code)


def test_an_api_path_no_route_matches_is_a_json_404(api):
    res = api.get("/api/v1/compliance/reports/not-a-uuid")
    assert res.status_code == 404
    assert res["Content-Type"].startswith("application/json")
    assert res.json()["code"] == "not_found"
