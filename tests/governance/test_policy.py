"""The stored, versioned policy: defaults, edits by admins as new versions, validation, and its effect."""

from __future__ import annotations

import copy
import json

import pytest

from governance.models import PolicyVersion
from ledger.models import AuditEvent
from tests.governance.conftest import errors

pytestmark = pytest.mark.django_db


def editable(policy: dict) -> dict:
    """The part of a GET answer that a PUT takes back."""
    return {k: copy.deepcopy(policy[k]) for k in ("purposes", "levels", "toxic_combinations")}


def test_the_defaults_are_in_effect(client_for, data_scientist):
    policy = client_for(data_scientist).get("/api/v1/policy").json()
    assert policy["version"] == 1
    levels = policy["levels"]
    assert levels["C1"]["auto_approve"] is True and levels["C1"]["approvers"] == []
    assert levels["C2"]["approvers"] == ["owner"]
    assert levels["C3"]["approvers"] == ["owner", "privacy-officer"]
    assert levels["C4"]["approvers"] == ["owner", "privacy-officer", "data-steward"]
    assert levels["C4"]["max_duration"] == "PT8H"
    assert set(levels["C4"]["purposes"]) <= set(policy["purposes"])
    assert policy["toxic_combinations"][0]["tags"] == ["customer", "transactions.raw"]


def test_an_admin_edit_is_a_new_version_and_the_old_one_stays_readable(client_for, admin_user, data_scientist):
    client = client_for(admin_user)
    doc = editable(client.get("/api/v1/policy").json())
    doc["levels"]["C2"]["max_duration"] = "P14D"
    res = client.put("/api/v1/policy", {**doc, "note": "shorter C2 grants", "base_version": 1}, format="json")
    assert res.status_code == 201, res.json()
    assert (
        res.json()["version"] == 2 and res.json()["created_by"] == "ada" and res.json()["note"] == "shorter C2 grants"
    )
    assert client_for(data_scientist).get("/api/v1/policy").json()["levels"]["C2"]["max_duration"] == "P14D"
    versions = client.get("/api/v1/policy/versions").json()["results"]
    assert [v["version"] for v in versions] == [2, 1]
    assert client.get("/api/v1/policy/versions/1").json()["levels"]["C2"]["max_duration"] == "P30D"
    assert client.get("/api/v1/policy/versions/9").status_code == 404
    event = AuditEvent.objects.get(action="governance.policy.update")
    assert event.actor_name == "ada" and event.reason == "shorter C2 grants"
    assert event.before["levels"]["C2"]["max_duration"] == "P30D"
    assert event.after["levels"]["C2"]["max_duration"] == "P14D"
    # The same document again changes nothing; an edit based on an old version is a conflict.
    same = client.put("/api/v1/policy", doc, format="json")
    assert same.status_code == 200 and same.json()["version"] == 2
    stale = client.put("/api/v1/policy", {**doc, "base_version": 1}, format="json")
    assert stale.status_code == 409
    assert PolicyVersion.objects.count() == 2


def test_only_admins_edit_the_policy(client_for, data_steward, privacy_officer, compliance_officer, data_scientist):
    for user in (data_steward, privacy_officer, compliance_officer, data_scientist):
        doc = editable(client_for(user).get("/api/v1/policy").json())
        assert client_for(user).put("/api/v1/policy", doc, format="json").status_code == 403
    assert client_for(None).get("/api/v1/policy").status_code == 401
    assert PolicyVersion.objects.count() == 1


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["levels"].pop("C3"), "levels.C3"),
        (lambda d: d["levels"].__setitem__("C9", d["levels"]["C1"]), "levels.C9"),
        (lambda d: d["levels"]["C2"].__setitem__("approvers", ["owner", "cfo"]), "levels.C2.approvers"),
        (lambda d: d["levels"]["C2"].__setitem__("max_duration", "forever"), "levels.C2.max_duration"),
        (lambda d: d["levels"]["C2"].__setitem__("purposes", ["astrology"]), "levels.C2.purposes"),
        (lambda d: d["levels"]["C1"].__setitem__("auto_approve", False), "levels.C1.auto_approve"),
        (lambda d: d["toxic_combinations"].append({"name": "x", "tags": ["solo"]}), "toxic_combinations[1].tags"),
        (lambda d: d["purposes"].__setitem__("Bad Key", "x"), "purposes.Bad Key"),
    ],
)
def test_invalid_policies_are_refused_naming_the_field(client_for, admin_user, edit, field):
    client = client_for(admin_user)
    doc = editable(client.get("/api/v1/policy").json())
    edit(doc)
    res = client.put("/api/v1/policy", doc, format="json")
    assert res.status_code == 400, res.json()
    assert field in errors(res), res.json()
    assert PolicyVersion.objects.count() == 1 and not AuditEvent.objects.filter(action="governance.policy.update")


def test_a_policy_edit_applies_to_new_requests(client_for, admin_user, ask, act, data_scientist, levelled):
    client = client_for(admin_user)
    doc = editable(client.get("/api/v1/policy").json())
    doc["levels"]["C2"].update(approvers=[], auto_approve=True)
    assert client.put("/api/v1/policy", doc, format="json").status_code == 201
    res = ask(data_scientist, [levelled["C2"]], purpose="analytics")
    assert res.json()["state"] == "approved" and res.json()["policy_version"] == 2


def test_the_admin_site_adds_a_version_through_the_service(client, admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    page = client.get("/admin/governance/policyversion/add/")
    assert page.status_code == 200 and "PT8H" in page.content.decode()
    current = PolicyVersion.objects.get()
    form = {
        "note": "from the admin site",
        "purposes": json.dumps(current.purposes),
        "levels": json.dumps({**current.levels, "C1": {**current.levels["C1"], "max_duration": "P60D"}}),
        "toxic_combinations": "[]",
    }
    done = client.post("/admin/governance/policyversion/add/", form)
    assert done.status_code == 302, done.content.decode()[:2000]
    latest = PolicyVersion.objects.order_by("-version").first()
    assert latest.version == 2 and latest.levels["C1"]["max_duration"] == "P60D" and latest.created_by_name == "ada"
    assert AuditEvent.objects.filter(action="governance.policy.update", actor_name="ada").exists()
    only_c1 = json.dumps({"C1": current.levels["C1"]})
    bad = client.post("/admin/governance/policyversion/add/", {**form, "levels": only_c1})
    assert bad.status_code == 200 and "Missing" in bad.content.decode()
    assert PolicyVersion.objects.count() == 2
    assert client.get(f"/admin/governance/policyversion/{latest.pk}/change/").status_code == 200
    assert client.post(f"/admin/governance/policyversion/{latest.pk}/delete/", {"post": "yes"}).status_code == 403
