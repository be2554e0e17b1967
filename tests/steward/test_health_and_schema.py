"""Health endpoints, the OpenAPI schema, request ids, and the error format."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_healthz_needs_no_login(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_broker_search_and_graph(client, settings, redis_url):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    res = client.get("/readyz")
    assert res.status_code == 200, res.content
    assert res.json()["checks"] == {"database": "ok", "broker": "ok", "search": "ok", "graph": "ok", "workspaces": "ok"}


def test_readyz_reports_an_unreachable_workspace_cluster(client, settings, tmp_path):
    settings.STEWARD_WORKSPACE_CONNECTOR = "kubernetes"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {token: s3cret-token}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    from steward.settings.base import _KUBERNETES

    settings.STEWARD_WORKSPACE_OPTIONS = {**_KUBERNETES, "kubeconfig": str(kubeconfig), "timeout": 2}
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json()["checks"]["workspaces"] == "unavailable: BackendUnavailable"
    assert b"s3cret-token" not in res.content


def test_readyz_reports_an_unreachable_graph_engine(client, settings):
    settings.STEWARD_GRAPH_BACKEND = "neo4j"
    settings.STEWARD_GRAPH_OPTIONS = {"url": "bolt://127.0.0.1:1", "user": "neo4j", "password": "s3cret-pw"}
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json()["checks"]["graph"] == "unavailable: BackendUnavailable"
    assert res.json()["checks"]["database"] == "ok"
    assert b"s3cret-pw" not in res.content


def test_readyz_reports_a_dead_broker(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json()["checks"]["broker"].startswith("unavailable")


def test_openapi_schema_documents_the_api(client_for, data_scientist):
    res = client_for(data_scientist).get("/api/schema/")
    assert res.status_code == 200
    schema = yaml.safe_load(res.content)
    paths = schema["paths"]
    for path in [
        "/api/v1/datasets",
        "/api/v1/datasets/bulk",
        "/api/v1/datasets/lookup",
        "/api/v1/datasets/{id}/tags",
        "/api/v1/datasets/{id}/tags/{key}",
        "/api/v1/search",
        "/api/v1/search/suggest",
        "/api/v1/tags",
        "/api/v1/models",
        "/api/v1/tokens",
    ]:
        assert any(p.rstrip("/") == path for p in paths), path
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_docs_page_is_served_without_a_cdn(client_for, data_scientist):
    res = client_for(data_scientist).get("/api/docs/")
    assert res.status_code == 200
    assert b"cdn.jsdelivr" not in res.content and b"unpkg" not in res.content


def test_request_id_is_echoed(client):
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc123")["X-Request-ID"] == "abc123"
