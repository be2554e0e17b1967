"""Who sees and does what, role by role. Hidden (C4) metadata stays hidden from non-holders."""

import pytest

from catalog import services
from tests.conftest import spec

pytestmark = pytest.mark.django_db

NS = "postgres://warehouse:5432"
ROLES = ["data_scientist", "data_owner", "data_steward", "privacy_officer", "compliance_officer", "admin_user"]


@pytest.fixture
def secret(make_dataset, data_owner):
    return make_dataset("hr.public.salaries", tags=["secret.source"], owners=["group:sales-eng"])


@pytest.fixture
def public(make_dataset):
    return make_dataset("web.public.pages")


def test_anonymous_gets_401_everywhere(client_for, public):
    client = client_for(None)
    for url in [
        "/api/v1/datasets",
        f"/api/v1/datasets/{public.pk}",
        "/api/v1/search?q=pages",
        "/api/v1/tags",
        "/api/v1/models",
        "/api/v1/tokens",
        "/api/v1/me",
        "/api/schema/",
    ]:
        res = client.get(url)
        assert res.status_code in (401, 403), url
        assert res.status_code == 401 or url == "/api/schema/", url
    assert client.post("/api/v1/datasets", {"namespace": NS, "name": "x"}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("role", "sees_secret"),
    [
        ("data_scientist", False),
        ("data_owner", True),
        ("data_steward", True),
        ("privacy_officer", True),
        ("compliance_officer", True),
        ("admin_user", True),
    ],
)
def test_hidden_dataset_visible_only_to_holders(request, client_for, secret, public, role, sees_secret):
    """The owner group (data_owner is in sales-eng) and privileged roles see C4 metadata; others get 404."""
    client = client_for(request.getfixturevalue(role))
    detail = client.get(f"/api/v1/datasets/{secret.pk}")
    assert detail.status_code == (200 if sees_secret else 404)
    names = {d["name"] for d in client.get("/api/v1/datasets").json()["results"]}
    assert ("hr.public.salaries" in names) is sees_secret
    assert "web.public.pages" in names
    lookup = client.get("/api/v1/datasets/lookup", {"namespace": NS, "name": "hr.public.salaries"})
    assert lookup.status_code == (200 if sees_secret else 404)
    found = {h["qualified_name"] for h in client.get("/api/v1/search", {"q": "salaries"}).json()["results"]}
    assert ("hr.public.salaries" in found) is sees_secret
    suggested = {s["qualified_name"] for s in client.get("/api/v1/search/suggest", {"q": "sal"}).json()["results"]}
    assert ("hr.public.salaries" in suggested) is sees_secret


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 201),
        ("data_steward", 201),
        ("privacy_officer", 403),
        ("compliance_officer", 403),
        ("admin_user", 201),
    ],
)
def test_who_may_register_datasets(request, client_for, role, status):
    res = client_for(request.getfixturevalue(role)).post(
        "/api/v1/datasets", {"namespace": NS, "name": "new.t"}, format="json"
    )
    assert res.status_code == status, res.content
    if status == 403:
        assert res.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 403),
        ("data_steward", 200),
        ("privacy_officer", 403),
        ("compliance_officer", 403),
        ("admin_user", 200),
    ],
)
def test_who_may_edit_someone_elses_dataset(request, client_for, public, role, status):
    res = client_for(request.getfixturevalue(role)).patch(
        f"/api/v1/datasets/{public.pk}", {"description": "x"}, format="json"
    )
    assert res.status_code == status


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 403),
        ("data_steward", 201),
        ("privacy_officer", 201),
        ("compliance_officer", 403),
        ("admin_user", 201),
    ],
)
def test_who_may_tag(request, client_for, public, role, status):
    res = client_for(request.getfixturevalue(role)).post(
        f"/api/v1/datasets/{public.pk}/tags", {"key": "finance"}, format="json"
    )
    assert res.status_code == status


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 403),
        ("data_steward", 201),
        ("privacy_officer", 201),
        ("compliance_officer", 403),
        ("admin_user", 201),
    ],
)
def test_who_may_define_tags(request, client_for, role, status):
    res = client_for(request.getfixturevalue(role)).post("/api/v1/tags", {"key": "new.tag"}, format="json")
    assert res.status_code == status


def test_owner_may_edit_and_tag_own_dataset(client_for, data_owner, data_steward, tags):
    ds = services.dataset_create(actor=data_steward, spec=spec({"namespace": NS, "name": "mine", "owners": ["olive"]}))
    client = client_for(data_owner)
    assert client.patch(f"/api/v1/datasets/{ds.pk}", {"description": "ok"}, format="json").status_code == 200
    assert client.post(f"/api/v1/datasets/{ds.pk}/tags", {"key": "finance"}, format="json").status_code == 201
    assert client.delete(f"/api/v1/datasets/{ds.pk}").status_code == 204


def test_non_holder_cannot_write_to_hidden_dataset_and_learns_nothing(client_for, data_scientist, secret):
    client = client_for(data_scientist)
    res = client.patch(f"/api/v1/datasets/{secret.pk}", {"description": "x"}, format="json")
    assert res.status_code == 404
    assert client.post(f"/api/v1/datasets/{secret.pk}/tags", {"key": "finance"}, format="json").status_code == 404
