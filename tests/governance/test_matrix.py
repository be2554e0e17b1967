"""Who may do what: every role against every governance endpoint.

Oscar (a data scientist) has a pending C3 request (needs an owner of the dataset and a privacy officer) and an
approved C2 grant. Olive owns both datasets (through the sales-eng group); dana is a bystander.
"""

from __future__ import annotations

import pytest

from governance.models import Grant

pytestmark = pytest.mark.django_db

ROLES = ["data_scientist", "data_owner", "data_steward", "privacy_officer", "compliance_officer", "admin_user", None]
ENDPOINTS = ["list", "create", "read", "approve", "read_grant", "revoke", "authorize", "audit"]

# Expected status per endpoint, in the order of ROLES (anonymous last).
EXPECTED = {
    "list": [200, 200, 200, 200, 200, 200, 401],
    "create": [201, 201, 201, 201, 201, 201, 401],
    "read": [404, 200, 404, 200, 200, 200, 401],
    "approve": [404, 200, 404, 200, 403, 403, 401],
    "read_grant": [404, 200, 200, 200, 200, 200, 401],
    "revoke": [404, 200, 200, 200, 403, 200, 401],
    "authorize": [403, 403, 403, 403, 200, 200, 401],
    "audit": [403, 403, 403, 403, 200, 200, 401],
}
# Whether the role's plain listing (GET /access-requests) includes oscar's request.
SEES_OTHERS_REQUESTS = {"compliance_officer", "admin_user"}


@pytest.fixture
def world(ask, act, other_scientist, data_owner, levelled):
    grant_request = ask(other_scientist, [levelled["C2"]], purpose="analytics").json()["id"]
    act(data_owner, grant_request, "approve")
    pending = ask(other_scientist, [levelled["C3"]], purpose="analytics").json()["id"]
    return {"request": pending, "grant": Grant.objects.get(request_id=grant_request), "levelled": levelled}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_role_endpoint_matrix(request, client_for, django_capture_on_commit_callbacks, world, role, endpoint):
    user = request.getfixturevalue(role) if role else None
    client = client_for(user)
    req, grant = world["request"], world["grant"]
    with django_capture_on_commit_callbacks(execute=True):
        if endpoint == "list":
            res = client.get("/api/v1/access-requests")
        elif endpoint == "create":
            body = {
                "datasets": [str(world["levelled"]["C1"].pk)],
                "purpose": "analytics",
                "justification": "matrix",
                "duration": "P1D",
            }
            res = client.post("/api/v1/access-requests", body, format="json")
        elif endpoint == "read":
            res = client.get(f"/api/v1/access-requests/{req}")
        elif endpoint == "approve":
            res = client.post(f"/api/v1/access-requests/{req}/approve", {}, format="json")
        elif endpoint == "read_grant":
            res = client.get(f"/api/v1/grants/{grant.pk}")
        elif endpoint == "revoke":
            res = client.post(f"/api/v1/grants/{grant.pk}/revoke", {"reason": "matrix"}, format="json")
        elif endpoint == "authorize":
            body = {"subject": "oscar", "action": "read", "asset": str(grant.dataset_id)}
            res = client.post("/api/v1/authorize", body, format="json")
        else:
            res = client.get("/api/v1/audit")
    expected = EXPECTED[endpoint][ROLES.index(role)]
    assert res.status_code == expected, (role, endpoint, res.json())
    if endpoint == "list" and expected == 200:
        ids = {r["id"] for r in res.json()["results"]}
        assert (req in ids) is (role in SEES_OTHERS_REQUESTS)
    if endpoint == "revoke":
        assert (Grant.objects.get(pk=grant.pk).revoked_at is not None) is (expected == 200)
    if endpoint == "authorize" and expected == 200:
        assert res.json()["decision"] == "allow"
