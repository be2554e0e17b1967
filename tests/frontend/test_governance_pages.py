"""The tag vocabulary and the access policy edited in the browser, by the roles the API allows: tags by
stewards, privacy officers and admins; the policy by admins, one per-level form, each save a new version, and a
readable diff between versions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from catalog.models import Tag
from governance.models import PolicyVersion
from governance.selectors import policy_current

pytestmark = pytest.mark.django_db


def _as(client, user):
    client.force_login(user)
    return client


def _policy_form(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the editor posts for ``doc`` (as a browser would send the inputs it shows), with ``changes`` applied."""
    body: dict[str, Any] = {"note": ""}
    for i, (key, description) in enumerate(doc["purposes"].items()):
        body[f"purpose-key-{i}"], body[f"purpose-description-{i}"] = key, description
    for i, combo in enumerate(doc["toxic_combinations"]):
        body[f"toxic-name-{i}"], body[f"toxic-description-{i}"] = combo["name"], combo["description"]
        body[f"toxic-tags-{i}"] = ", ".join(combo["tags"])
    for code, rule in doc["levels"].items():
        body[f"{code}-approvers"] = rule["approvers"]
        body[f"{code}-max_duration"] = rule["max_duration"]
        body[f"{code}-purposes"] = rule["purposes"]
    body.update(changes)
    return body


# ---- tags ----------------------------------------------------------------------------------------------------


def test_steward_creates_and_edits_a_tag_and_the_list_shows_it(client, data_steward, tags):
    client = _as(client, data_steward)
    page = client.get("/tags/").content.decode()
    assert 'id="tag-new"' in page and f"/tags/{tags['finance'].pk}/edit" in page
    res = client.post(
        "/tags/new", {"key": "pii.phone", "description": "A phone number", "implied_level": "C3", "propagates": "1"}
    )
    tag = Tag.objects.get(key="pii.phone")
    assert res.status_code == 302 and res.url == f"/tags/#tag-{tag.pk}"
    assert tag.implied_level == "C3" and tag.propagates and tag.description == "A phone number"
    res = client.post(f"/tags/{tag.pk}/edit", {"description": "Phone (any format)", "implied_level": "C2"})
    tag.refresh_from_db()
    assert res.status_code == 302
    assert (tag.description, tag.implied_level, tag.propagates) == ("Phone (any format)", "C2", False)
    assert "Phone (any format)" in client.get("/tags/").content.decode()


def test_privacy_officer_may_edit_tags(client, privacy_officer, tags):
    res = _as(client, privacy_officer).post(
        f"/tags/{tags['finance'].pk}/edit", {"description": "Money", "implied_level": "", "propagates": "1"}
    )
    assert res.status_code == 302 and Tag.objects.get(key="finance").description == "Money"


def test_scientist_sees_the_vocabulary_but_cannot_change_it(client, data_scientist, tags):
    client = _as(client, data_scientist)
    page = client.get("/tags/").content.decode()
    assert "pii.email" in page and 'id="tag-new"' not in page and "/edit" not in page
    res = client.post("/tags/new", {"key": "sneaky", "propagates": "1"})
    assert res.status_code == 403 and "Only data stewards" in res.content.decode()
    assert client.get(f"/tags/{tags['finance'].pk}/edit").status_code == 403
    res = client.post(f"/tags/{tags['finance'].pk}/edit", {"description": "hacked", "implied_level": "C4"})
    assert res.status_code == 403
    assert not Tag.objects.filter(key="sneaky").exists()
    assert Tag.objects.get(key="finance").implied_level == ""


def test_bad_tag_input_names_the_field_and_writes_nothing(client, data_steward, tags):
    client = _as(client, data_steward)
    res = client.post("/tags/new", {"key": "Bad Key!", "implied_level": "C2"})
    assert res.status_code == 400 and "key: Use lower-case letters" in res.content.decode()
    res = client.post("/tags/new", {"key": "ok.key", "implied_level": "C9"})
    assert res.status_code == 400 and "implied_level" in res.content.decode()
    assert not Tag.objects.filter(key__in=["Bad Key!", "ok.key"]).exists()
    res = client.post("/tags/new", {"key": "finance"})
    assert res.status_code == 409 and "already exists" in res.content.decode()


def test_a_tag_in_use_is_not_deleted(client, data_steward, make_dataset):
    make_dataset("sales.public.customers", tags=["pii.email"])
    client = _as(client, data_steward)
    pk = Tag.objects.get(key="pii.email").pk
    res = client.post(f"/tags/{pk}/edit", {"delete": "1", "implied_level": "C3"})
    assert res.status_code == 409 and "still assigned" in res.content.decode()
    unused = Tag.objects.get(key="finance").pk
    assert client.post(f"/tags/{unused}/edit", {"delete": "1"}).status_code == 302
    assert not Tag.objects.filter(pk=unused).exists()


# ---- policy --------------------------------------------------------------------------------------------------


@pytest.fixture
def base():
    """The policy in effect before the test (migration 0004 stores the demo defaults as version 1; a flushed
    database has none, and version 0 is the built-in defaults)."""
    current = policy_current()
    return {"version": current.version, "doc": current.document(), "count": PolicyVersion.objects.count()}


def test_everyone_reads_the_policy_but_only_admins_see_and_use_the_editor(client, data_scientist, data_steward, base):
    client = _as(client, data_scientist)
    page = client.get("/policy/").content.decode()
    assert 'href="/policy/"' in page, "the nav links to the policy"
    assert "P30D" in page and "incident-response" in page and "Edit the policy" not in page
    assert client.get("/policy/edit").status_code == 403
    res = client.post("/policy/edit", _policy_form(base["doc"], **{"C1-max_duration": "P1D"}))
    assert res.status_code == 403 and "Only admins" in res.content.decode()
    res = _as(client, data_steward).post("/policy/edit", _policy_form(base["doc"], **{"C1-max_duration": "P2D"}))
    assert res.status_code == 403
    assert PolicyVersion.objects.count() == base["count"]


def test_admin_saves_a_new_version_through_the_per_level_form_and_sees_the_diff(client, admin_user, base):
    client = _as(client, admin_user)
    assert "Edit the policy" in client.get("/policy/").content.decode()
    form = client.get("/policy/edit").content.decode()
    assert 'name="C3-max_duration" value="P7D"' in form
    assert re.search(r'name="C2-approvers" value="owner" checked', form), "approvers are checkboxes, per level"
    doc, v0 = base["doc"], base["version"]
    res = client.post(
        "/policy/edit",
        _policy_form(doc, note="Shorter C3", base_version=str(v0), **{"C3-max_duration": "P3D"}),
    )
    assert res.status_code == 302 and res.url == f"/policy/?a={v0}&b={v0 + 1}#diff"
    v1 = PolicyVersion.objects.get(version=v0 + 1)
    assert v1.levels["C3"]["max_duration"] == "P3D" and v1.note == "Shorter C3" and v1.created_by == admin_user
    assert v1.levels["C2"] == doc["levels"]["C2"], "untouched levels are kept as they were"

    res = client.post(
        "/policy/edit",
        _policy_form(v1.document(), base_version=str(v0 + 1), **{"C2-approvers": ["owner", "data-steward"]}),
    )
    assert res.status_code == 302 and PolicyVersion.objects.count() == base["count"] + 2
    page = client.get(res.url).content.decode()
    diff = page.split('id="diff"')[1]
    row = re.search(r"<code>levels\.C2\.approvers</code></td>(.*?)</tr>", diff, re.S).group(1)
    assert "owner</td>" in row and "owner, data-steward" in row
    assert "levels.C3.max_duration" not in diff, "only what changed between v1 and v2"
    older = client.get("/policy/", {"a": v0, "b": v0 + 2}).content.decode().split('id="diff"')[1]
    assert "levels.C3.max_duration" in older and "P7D" in older and "P3D" in older


def test_saving_the_same_document_stores_no_version(client, admin_user, base):
    client = _as(client, admin_user)
    res = client.post("/policy/edit", _policy_form(base["doc"], **{"C1-max_duration": "P60D"}))
    assert res.status_code == 302 and PolicyVersion.objects.count() == base["count"] + 1
    same = policy_current().document()
    res = client.post("/policy/edit", _policy_form(same, base_version=str(base["version"] + 1)))
    assert res.status_code == 302 and PolicyVersion.objects.count() == base["count"] + 1


def test_invalid_input_shows_each_fields_error_and_writes_nothing(client, admin_user, base):
    client = _as(client, admin_user)
    res = client.post(
        "/policy/edit",
        _policy_form(base["doc"], **{"C3-max_duration": "a week", "C4-purposes": []}),
    )
    page = res.content.decode()
    assert res.status_code == 400
    c3 = page.split('id="level-C3"')[1].split('id="level-C4"')[0]
    assert 'class="field-error" id="C3-max_duration-error-1"' in c3 and 'aria-invalid="true"' in c3
    assert 'value="a week"' in c3, "the refused input is kept"
    c4 = page.split('id="level-C4"')[1]
    assert "List the purposes allowed at this level" in c4
    assert "Nothing was saved: 2 problems" in page
    assert page.count("List the purposes allowed at this level") == 1, "each error is shown once, by its field"
    assert PolicyVersion.objects.count() == base["count"]


def test_a_stale_form_is_refused_with_a_conflict(client, admin_user, base):
    client = _as(client, admin_user)
    client.post("/policy/edit", _policy_form(base["doc"], **{"C1-max_duration": "P60D"}))
    stale = _policy_form(base["doc"], base_version=str(base["version"]), **{"C1-max_duration": "P45D"})
    res = client.post("/policy/edit", stale)
    assert res.status_code == 409 and "reload it" in res.content.decode()
    assert PolicyVersion.objects.count() == base["count"] + 1


def test_diff_of_an_unknown_version_says_so(client, data_scientist):
    res = _as(client, data_scientist).get("/policy/", {"a": 0, "b": 99})
    assert res.status_code == 404 and "No policy version 99" in res.content.decode()


def test_purposes_and_toxic_combinations_are_rows_with_errors_by_row(client, admin_user, base):
    client = _as(client, admin_user)
    form = client.get("/policy/edit").content.decode()
    assert 'name="purpose-key-0" value="analytics"' in form and 'name="toxic-name-0"' in form
    n = len(base["doc"]["purposes"])
    res = client.post(
        "/policy/edit",
        _policy_form(
            base["doc"],
            **{f"purpose-key-{n}": "fraud-review", f"purpose-description-{n}": "Reviewing suspected fraud."},
            **{"toxic-name-1": "email-and-source", "toxic-tags-1": "pii.email", "toxic-description-1": "x"},
        ),
    )
    page = res.content.decode()
    assert res.status_code == 400 and PolicyVersion.objects.count() == base["count"]
    row = page.split('id="toxic-1"')[1].split("</tr>")[0]
    assert "tags: At least two different tag keys." in row, "the error sits on the combination's own row"
    assert 'value="fraud-review"' in page, "the new purpose typed is kept"
    res = client.post(
        "/policy/edit",
        _policy_form(
            base["doc"], **{f"purpose-key-{n}": "fraud-review", f"purpose-description-{n}": "Reviewing fraud."}
        ),
    )
    assert res.status_code == 302
    assert policy_current().purposes["fraud-review"] == "Reviewing fraud."
    diff = client.get(res.url).content.decode().split('id="diff"')[1]
    assert re.search(r'class="diff-added"><td><code>purposes\.fraud-review</code></td><td class="diff-before">—', diff)
    assert 'name="C1-purposes" value="fraud-review"' in client.get("/policy/edit").content.decode()
