"""Tag vocabulary and the model registry through the API."""

import pytest

from catalog.models import ModelVersion

pytestmark = pytest.mark.django_db

DIGEST = "sha256:" + "a" * 64


def test_tag_crud(client_for, data_steward):
    client = client_for(data_steward)
    res = client.post(
        "/api/v1/tags", {"key": "pii.phone", "implied_level": "C3", "description": "Phone"}, format="json"
    )
    assert res.status_code == 201
    assert client.get("/api/v1/tags/pii.phone").json()["implied_level"] == "C3"
    assert client.patch("/api/v1/tags/pii.phone", {"propagates": False}, format="json").json()["propagates"] is False
    assert client.post("/api/v1/tags", {"key": "pii.phone"}, format="json").status_code == 409
    assert client.delete("/api/v1/tags/pii.phone").status_code == 204
    assert client.get("/api/v1/tags/pii.phone").status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"key": "Bad Key"}, "key"),
        ({"key": "ok", "implied_level": "C7"}, "implied_level"),
        ({"key": "ok", "colour": "red"}, "colour"),
    ],
)
def test_bad_tag_input(client_for, data_steward, payload, field):
    res = client_for(data_steward).post("/api/v1/tags", payload, format="json")
    assert res.status_code == 400
    assert res.json()["errors"][0]["field"] == field


def test_model_with_versions_and_promotion(client_for, data_scientist):
    client = client_for(data_scientist)
    model = client.post("/api/v1/models", {"name": "churn", "description": "Churn predictor"}, format="json")
    assert model.status_code == 201, model.content
    mid = model.json()["id"]
    assert model.json()["owners"] == [{"type": "user", "name": "dana"}]
    v1 = client.post(
        f"/api/v1/models/{mid}/versions",
        {
            "version": "1",
            "artifact_uri": "s3://models/churn/1",
            "artifact_digest": DIGEST,
            "image_digest": DIGEST,
            "code_commit": "abc1234",
            "framework": "sklearn",
            "parameters": {"C": 1.0},
            "metrics": {"auc": 0.81},
            "stage": "production",
        },
        format="json",
    )
    assert v1.status_code == 201, v1.content
    v2 = client.post(
        f"/api/v1/models/{mid}/versions", {"version": "2", "artifact_uri": "s3://models/churn/2"}, format="json"
    ).json()
    promoted = client.patch(f"/api/v1/model-versions/{v2['id']}", {"stage": "production"}, format="json")
    assert promoted.status_code == 200
    assert ModelVersion.objects.get(pk=v1.json()["id"]).stage == "archived"
    listed = client.get(f"/api/v1/models/{mid}/versions").json()["results"]
    assert [v["version"] for v in listed] == ["2", "1"]
    dup = client.post(f"/api/v1/models/{mid}/versions", {"version": "2", "artifact_uri": "x"}, format="json")
    assert dup.status_code == 409


def test_model_version_rejects_bad_digest_and_immutable_changes(client_for, data_scientist):
    client = client_for(data_scientist)
    mid = client.post("/api/v1/models", {"name": "m1"}, format="json").json()["id"]
    bad = client.post(
        f"/api/v1/models/{mid}/versions",
        {"version": "1", "artifact_uri": "x", "artifact_digest": "md5:abc"},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "artifact_digest"
    vid = client.post(f"/api/v1/models/{mid}/versions", {"version": "1", "artifact_uri": "x"}, format="json").json()[
        "id"
    ]
    res = client.patch(f"/api/v1/model-versions/{vid}", {"artifact_uri": "y"}, format="json")
    assert res.status_code == 400 and res.json()["errors"][0]["field"] == "artifact_uri"


def test_only_owners_change_a_model(client_for, data_scientist, other_scientist):
    mid = client_for(data_scientist).post("/api/v1/models", {"name": "m2"}, format="json").json()["id"]
    other = client_for(other_scientist)
    assert other.patch(f"/api/v1/models/{mid}", {"description": "x"}, format="json").status_code == 403
    assert (
        other.post(f"/api/v1/models/{mid}/versions", {"version": "1", "artifact_uri": "x"}, format="json").status_code
        == 403
    )


def test_classification_levels_listed_in_order(client_for, data_scientist):
    levels = client_for(data_scientist).get("/api/v1/classification-levels").json()
    assert [lv["code"] for lv in levels] == ["C1", "C2", "C3", "C4"]
    assert [lv["hides_metadata"] for lv in levels] == [False, False, False, True]
