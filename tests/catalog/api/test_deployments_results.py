"""Deployments (which version served where, when) and result records resolved to the deployment serving then."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from catalog import services
from catalog.history import DEPLOYMENT
from catalog.models import Deployment, ResultRecord
from ledger import history
from ledger.models import AuditEvent
from steward.errors import ValidationFailed
from steward.identity import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

T1 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 8, 9, 0, 0, 123_456, tzinfo=UTC)
T3 = datetime(2025, 3, 15, 9, 0, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def model(data_scientist):
    """Dana's model ``churn`` with versions 1 and 2."""
    m = services.model_create(actor=data_scientist, name="churn")
    services.model_version_create(actor=data_scientist, model=m, version="1", artifact_uri="s3://m/churn/1")
    services.model_version_create(actor=data_scientist, model=m, version="2", artifact_uri="s3://m/churn/2")
    return m


@pytest.fixture
def versions(model):
    return {v.version: v for v in model.versions.all()}


@pytest.fixture
def owner(client_for, data_scientist):
    return client_for(data_scientist)


def deploy(client, version, environment="prod", at=None, **extra):
    body = {"model_version": str(version.pk), "environment": environment, **extra}
    if at is not None:
        body["deployed_from"] = iso(at)
    return client.post("/api/v1/deployments", body, format="json")


def record(t, n=0, **extra):
    return {"model": "churn", "produced_at": iso(t), "input_ref": f"s3://in/{n}", "output_digest": f"d{n}", **extra}


def post_results(client, records):
    return client.post("/api/v1/results", {"records": records}, format="json")


def errors(res):
    return {(e["field"], e["code"]) for e in res.json()["errors"]}


# --- deployments -----------------------------------------------------------------------------------------------------


def test_redeploy_ends_the_open_deployment_at_the_new_start(owner, versions):
    first = deploy(owner, versions["1"], at=T1)
    assert first.status_code == 201, first.content
    assert first.json()["serving"] is True and first.json()["deployed_to"] is None
    second = deploy(owner, versions["2"], at=T2, endpoint="https://churn.internal/v2")
    assert second.status_code == 201, second.content

    old = owner.get(f"/api/v1/deployments/{first.json()['id']}").json()
    assert old["deployed_to"] == iso(T2)
    assert old["serving"] is False
    new = second.json()
    assert (new["version"], new["model_name"], new["serving"], new["endpoint"]) == (
        "2",
        "churn",
        True,
        "https://churn.internal/v2",
    )
    actions = list(AuditEvent.objects.filter(action__startswith="catalog.deployment.").values_list("action", flat=True))
    assert sorted(actions) == ["catalog.deployment.create", "catalog.deployment.create", "catalog.deployment.end"]


def test_deployment_history_reads_back_as_of_each_change(owner, versions):
    first = deploy(owner, versions["1"], at=T1).json()["id"]
    second = deploy(owner, versions["2"], at=T2).json()["id"]
    ended = owner.post(f"/api/v1/deployments/{second}/end", {"at": iso(T3)}, format="json")
    assert ended.status_code == 200, ended.content

    rows = history.timeline(DEPLOYMENT, first)
    assert [r.state["deployed_to"] for r in rows] == [None, T2.isoformat()]
    redeployed_at = rows[1].valid_from
    assert history.as_of(DEPLOYMENT, first, redeployed_at - US)["deployed_to"] is None
    assert history.as_of(DEPLOYMENT, first, redeployed_at)["deployed_to"] == T2.isoformat()
    assert history.as_of(DEPLOYMENT, first, rows[0].valid_from - US) is None  # not recorded yet

    # The replacement was recorded in the same transaction, at the same instant.
    second_rows = history.timeline(DEPLOYMENT, second)
    assert second_rows[0].valid_from == redeployed_at
    assert [r.state["deployed_to"] for r in second_rows] == [None, T3.isoformat()]
    assert history.as_of(DEPLOYMENT, second, second_rows[1].valid_from)["deployed_to"] == T3.isoformat()
    assert history.drift(DEPLOYMENT) == []


def test_deployments_in_other_environments_do_not_end_each_other(owner, versions):
    prod = deploy(owner, versions["1"], "prod", at=T1).json()
    staging = deploy(owner, versions["2"], "staging", at=T2).json()
    assert owner.get(f"/api/v1/deployments/{prod['id']}").json()["serving"] is True
    assert staging["serving"] is True


@pytest.mark.parametrize(
    ("deployed_from", "code"),
    [
        (lambda: iso(timezone.now() + timedelta(minutes=5)), "future_datetime"),
        (lambda: "2025-03-01T09:00:00", "naive_datetime"),
        (lambda: "yesterday", "invalid_datetime"),
        (lambda: "2025-03-01T12:99:00Z", "invalid_datetime"),
        (lambda: "2025-13-01T09:00:00Z", "invalid_datetime"),
        (lambda: "2025-03-01T09:00:60Z", "invalid_datetime"),
        (lambda: "2025-03-01T09:00:00+24:00", "invalid_datetime"),
        (lambda: "0001-01-01T00:00:00+01:00", "out_of_range"),
    ],
)
def test_bad_deployed_from_is_refused_naming_the_field(owner, versions, deployed_from, code):
    res = owner.post(
        "/api/v1/deployments",
        {"model_version": str(versions["1"].pk), "environment": "prod", "deployed_from": deployed_from()},
        format="json",
    )
    assert res.status_code == 400, res.content
    assert ("deployed_from", code) in errors(res)
    assert not Deployment.objects.exists()


def test_overlapping_a_closed_window_is_a_conflict(owner, versions):
    d1 = deploy(owner, versions["1"], at=T1).json()["id"]
    assert owner.post(f"/api/v1/deployments/{d1}/end", {"at": iso(T3)}, format="json").status_code == 200

    inside = deploy(owner, versions["2"], at=T2)
    assert inside.status_code == 409
    assert ("deployed_from", "overlap") in errors(inside)
    assert "must start after" in inside.json()["detail"]
    before = deploy(owner, versions["2"], at=T1 - timedelta(days=1))
    assert before.status_code == 409
    adjacent = deploy(owner, versions["2"], at=T3)  # [T1, T3) then [T3, ...): no gap, no overlap
    assert adjacent.status_code == 201, adjacent.content


def test_a_new_deployment_must_start_after_the_open_one(owner, versions):
    deploy(owner, versions["1"], at=T2)
    for at in (T2, T1):
        res = deploy(owner, versions["2"], at=at)
        assert res.status_code == 409, res.content
    assert Deployment.objects.filter(deployed_to__isnull=True).count() == 1


def test_end_a_deployment(owner, versions):
    d = deploy(owner, versions["1"], at=T1).json()["id"]
    for at, code in (
        (iso(T1), "before_start"),
        (iso(T1 - timedelta(days=1)), "before_start"),
        (iso(timezone.now() + timedelta(hours=1)), "future_datetime"),
        ("2025-03-02T00:00:00", "naive_datetime"),
    ):
        res = owner.post(f"/api/v1/deployments/{d}/end", {"at": at}, format="json")
        assert res.status_code == 400, res.content
        assert ("at", code) in errors(res)
    ended = owner.post(f"/api/v1/deployments/{d}/end", format="json")
    assert ended.status_code == 200
    assert ended.json()["serving"] is False
    again = owner.post(f"/api/v1/deployments/{d}/end", format="json")
    assert again.status_code == 409
    assert "already ended" in again.json()["detail"]


def test_a_deployment_cannot_end_before_results_it_served(owner, versions):
    d = deploy(owner, versions["1"], at=T1).json()["id"]
    assert post_results(owner, [record(T3)]).status_code == 201
    res = owner.post(f"/api/v1/deployments/{d}/end", {"at": iso(T2)}, format="json")
    assert res.status_code == 409
    assert ("at", "results_recorded") in errors(res)
    backdated = deploy(owner, versions["2"], at=T2)  # would make the result at T3 belong to version 2
    assert backdated.status_code == 409
    assert ("deployed_from", "results_recorded") in errors(backdated)
    assert Deployment.objects.count() == 1


def test_list_deployments_filters(owner, versions, django_assert_max_num_queries):
    d1 = deploy(owner, versions["1"], "prod", at=T1).json()["id"]
    d2 = deploy(owner, versions["2"], "prod", at=T2).json()["id"]
    d3 = deploy(owner, versions["2"], "staging", at=T1).json()["id"]

    def ids(**params):
        res = owner.get("/api/v1/deployments", params)
        assert res.status_code == 200, res.content
        return [d["id"] for d in res.json()["results"]]

    with django_assert_max_num_queries(6):
        everything = ids()
    assert everything[0] == d2 and set(everything) == {d1, d2, d3}  # latest start first
    assert set(ids(environment="prod")) == {d1, d2}
    assert set(ids(model="churn")) == {d1, d2, d3}
    assert set(ids(model_version=str(versions["2"].pk))) == {d2, d3}
    assert set(ids(at=iso(T2 - US))) == {d1, d3}
    assert set(ids(at=iso(T2))) == {d2, d3}
    assert ids(at=iso(T1 - US)) == []
    bad = owner.get("/api/v1/deployments", {"at": "2025-03-01T00:00:00"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "at"
    assert owner.get("/api/v1/deployments", {"model_version": "nope"}).json()["errors"][0]["field"] == "model_version"


# --- result records --------------------------------------------------------------------------------------------------


def test_results_resolve_to_the_deployment_serving_to_the_microsecond(owner, versions):
    d1 = deploy(owner, versions["1"], at=T1).json()["id"]
    d2 = deploy(owner, versions["2"], at=T2).json()["id"]
    res = post_results(owner, [record(T1, 0), record(T2 - US, 1), record(T2, 2), record(T3, 3)])
    assert res.status_code == 201, res.content
    assert res.json()["created"] == 4
    got = [owner.get(f"/api/v1/results/{rid}").json() for rid in res.json()["ids"]]
    assert [(r["deployment"], r["version"], r["environment"]) for r in got] == [
        (d1, "1", "prod"),
        (d1, "1", "prod"),
        (d2, "2", "prod"),
        (d2, "2", "prod"),
    ]
    assert got[1]["produced_at"] == iso(T2 - US)
    assert got[0]["received_by"] == "dana"


def test_a_single_record_without_the_records_wrapper(owner, versions):
    deploy(owner, versions["1"], at=T1)
    res = owner.post("/api/v1/results", record(T2), format="json")
    assert res.status_code == 201, res.content
    assert res.json()["received"] == 1
    bad = owner.post("/api/v1/results", {**record(T2), "produced_at": "2025-03-08T09:00:00"}, format="json")
    assert bad.status_code == 400
    assert ("produced_at", "naive_datetime") in errors(bad)


def test_resending_is_a_no_op(owner, versions):
    deploy(owner, versions["1"], at=T1)
    batch = [record(T2, n) for n in range(3)]
    first = post_results(owner, batch)
    assert (first.status_code, first.json()["created"], first.json()["already_present"]) == (201, 3, 0)
    again = post_results(owner, [*batch, batch[0]])
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["already_present"]) == (0, 4)
    assert again.json()["ids"] == [*first.json()["ids"], first.json()["ids"][0]]
    assert ResultRecord.objects.count() == 3
    # The same time written with another offset is the same instant: the same record.
    shifted = {**batch[1], "produced_at": T2.astimezone(timezone.get_fixed_timezone(120)).isoformat()}
    assert post_results(owner, [shifted]).json()["created"] == 0
    assert AuditEvent.objects.filter(action="catalog.results.ingest").count() == 3


def test_a_given_id_is_kept_and_cannot_be_reused_for_other_content(owner, versions):
    deploy(owner, versions["1"], at=T1)
    rid = "0b6f3c1e-95d4-4c8e-8a43-1f1d2f0c9a11"
    assert post_results(owner, [record(T2, 1, id=rid)]).json()["ids"] == [rid]
    assert post_results(owner, [record(T2, 1, id=rid)]).json()["already_present"] == 1
    clash = post_results(owner, [record(T2, 2, id=rid)])
    assert clash.status_code == 409
    assert ("records[0].id", "conflict") in errors(clash)
    twice = post_results(owner, [record(T2, 3, id=rid.replace("0b", "0c")), record(T2, 4, id=rid.replace("0b", "0c"))])
    assert twice.status_code == 400
    assert ("records[1].id", "duplicate") in errors(twice)


def test_bad_records_are_refused_naming_each_path_and_nothing_is_written(owner, versions, model):
    deploy(owner, versions["1"], "prod", at=T1)
    staging = deploy(owner, versions["2"], "staging", at=T2).json()["id"]
    future = timezone.now() + timedelta(minutes=1)
    res = post_results(
        owner,
        [
            record(T3, 0),  # fine on its own, but prod and staging both serve at T3: ambiguous
            {**record(T2, 1), "produced_at": "2025-03-08T09:00:00"},
            record(future, 2),
            record(T2, 3, model="no-such-model"),
            {**record(T2, 4), "model": None, "deployment": "5d0b8a4e-0000-4000-8000-000000000000"},
            record(T1 - US, 5),  # before anything was deployed
            record(T2 - US, 6, deployment=staging),  # staging started at T2
            record(T2, 7, colour="red"),
            {"model": "churn", "produced_at": iso(T2)},
        ],
    )
    assert res.status_code == 400, res.content
    found = errors(res)
    assert {
        ("records[1].produced_at", "naive_datetime"),
        ("records[2].produced_at", "future_datetime"),
        ("records[7].colour", "unknown_field"),
        ("records[8].input_ref", "required"),
        ("records[8].output_digest", "required"),
    } <= found
    assert ResultRecord.objects.count() == 0

    res = post_results(
        owner,
        [
            record(T2, 3, model="no-such-model"),
            {**record(T2, 4), "model": None, "deployment": "5d0b8a4e-0000-4000-8000-000000000000"},
        ],
    )
    assert errors(res) == {("records[0].model", "unknown_model"), ("records[1].deployment", "unknown")}

    res = post_results(owner, [record(T3, 0), record(T1 - US, 5), record(T2 - US, 6, deployment=staging)])
    assert errors(res) == {
        ("records[0].produced_at", "ambiguous"),
        ("records[1].produced_at", "no_deployment"),
        ("records[2].produced_at", "not_serving"),
    }
    messages = {e["field"]: e["message"] for e in res.json()["errors"]}
    assert "(prod, staging); give environment or deployment" in messages["records[0].produced_at"]
    assert (
        "No deployment of model churn was serving at 2025-03-01T08:59:59.999999+00:00"
        in messages["records[1].produced_at"]
    )
    assert ResultRecord.objects.count() == 0
    assert not AuditEvent.objects.filter(action="catalog.results.ingest").exists()

    chosen = post_results(owner, [record(T3, 0, environment="staging"), record(T3, 1, deployment=staging)])
    assert chosen.status_code == 201, chosen.content
    assert set(ResultRecord.objects.values_list("deployment_id", flat=True)) == {Deployment.objects.get(pk=staging).pk}


def test_ten_thousand_records_in_one_call_and_one_audit_event(owner, versions, django_assert_max_num_queries):
    deploy(owner, versions["1"], at=T1)
    d2 = deploy(owner, versions["2"], at=T2).json()["id"]
    records = [record(T1 + timedelta(seconds=n * 100), n) for n in range(10_000)]
    with django_assert_max_num_queries(16):  # a fixed number, whatever the size: no query per record
        res = post_results(owner, records)
    assert res.status_code == 201, res.content[:500]
    assert res.json()["created"] == 10_000
    assert len(set(res.json()["ids"])) == 10_000
    assert ResultRecord.objects.count() == 10_000
    after_t2 = sum(1 for n in range(10_000) if T1 + timedelta(seconds=n * 100) >= T2)
    assert ResultRecord.objects.filter(deployment_id=d2, model_version=versions["2"]).count() == after_t2
    events = list(AuditEvent.objects.filter(action="catalog.results.ingest"))
    assert len(events) == 1
    assert events[0].after["created"] == 10_000
    assert events[0].after["models"] == [str(versions["1"].model_id)]

    too_many = post_results(owner, records + [record(T3, 10_000)])
    assert too_many.status_code == 400
    assert ("records", "max_length") in errors(too_many)
    assert "at most 10000" in too_many.json()["detail"]


def test_list_results_filters_and_paginates(owner, versions, django_assert_max_num_queries):
    d1 = deploy(owner, versions["1"], at=T1).json()["id"]
    d2 = deploy(owner, versions["2"], at=T2).json()["id"]
    post_results(owner, [record(T1 + timedelta(days=n), n) for n in range(12)])

    def listed(**params):
        res = owner.get("/api/v1/results", params)
        assert res.status_code == 200, res.content
        return res.json()

    with django_assert_max_num_queries(6):
        page = listed(page_size=5)
    assert len(page["results"]) == 5 and page["next"]
    assert [r["produced_at"] for r in page["results"]] == sorted(
        (r["produced_at"] for r in page["results"]), reverse=True
    )
    second = owner.get(page["next"]).json()
    assert not {r["id"] for r in second["results"]} & {r["id"] for r in page["results"]}
    assert all(r["deployment"] == d1 for r in listed(deployment=d1)["results"])
    assert {r["deployment"] for r in listed(model="churn", **{"from": iso(T2)})["results"]} == {d2}
    before_t2 = listed(to=iso(T2))["results"]
    assert len(before_t2) == 8
    assert all(datetime.fromisoformat(r["produced_at"]) < T2 for r in before_t2)
    assert owner.get("/api/v1/results", {"from": "today"}).json()["errors"][0]["field"] == "from"
    assert owner.get("/api/v1/results/not-a-uuid").status_code == 404


# --- who may do what -------------------------------------------------------------------------------------------------


def test_only_owners_deploy_and_post_results(client_for, owner, versions, other_scientist, data_steward):
    d = deploy(owner, versions["1"], at=T1).json()["id"]
    stranger = client_for(other_scientist)
    refused = deploy(stranger, versions["2"], at=T2)
    assert refused.status_code == 403
    assert stranger.post(f"/api/v1/deployments/{d}/end", format="json").status_code == 403
    denied = post_results(stranger, [record(T2)])
    assert denied.status_code == 403
    assert "churn" in denied.json()["detail"]
    assert stranger.get(f"/api/v1/deployments/{d}").status_code == 200  # the model is not hidden: it may read

    service = client_for(make_user("inference-bot", Role.SERVICE))
    assert post_results(service, [record(T2, 1)]).status_code == 201
    assert post_results(client_for(data_steward), [record(T2, 2)]).status_code == 201


def test_anonymous_is_refused(client_for, owner, versions):
    d = deploy(owner, versions["1"], at=T1).json()["id"]
    anonymous = client_for(None)
    for res in (
        anonymous.get("/api/v1/deployments"),
        anonymous.get(f"/api/v1/deployments/{d}"),
        anonymous.get("/api/v1/results"),
        deploy(anonymous, versions["2"], at=T2),
        post_results(anonymous, [record(T2)]),
    ):
        assert res.status_code in (401, 403)
    assert not ResultRecord.objects.exists()


def test_hidden_model_deployments_and_results_only_for_who_may_see_it(
    client_for, data_scientist, other_scientist, compliance_officer
):
    secret = services.model_create(actor=data_scientist, name="fraud", classification="C4")
    version = services.model_version_create(actor=data_scientist, model=secret, version="1", artifact_uri="s3://f/1")
    owner = client_for(data_scientist)
    d = deploy(owner, version, at=T1).json()["id"]
    rid = post_results(owner, [record(T2, model="fraud")]).json()["ids"][0]

    stranger = client_for(other_scientist)
    assert stranger.get(f"/api/v1/deployments/{d}").status_code == 404
    assert stranger.get(f"/api/v1/results/{rid}").status_code == 404
    assert stranger.get("/api/v1/deployments").json()["results"] == []
    assert stranger.get("/api/v1/results").json()["results"] == []
    unknown = post_results(stranger, [record(T2, 9, model="fraud")])  # learns nothing, not even a 403
    assert ("records[0].model", "unknown_model") in errors(unknown)
    assert ("model_version", "unknown") in errors(deploy(stranger, version, at=T2))

    officer = client_for(compliance_officer)
    assert officer.get(f"/api/v1/results/{rid}").json()["deployment"] == d
    assert [x["id"] for x in officer.get("/api/v1/deployments", {"model": "fraud"}).json()["results"]] == [d]


# --- model versions: trained_by --------------------------------------------------------------------------------------


def test_model_version_records_who_trained_it(owner, model, other_scientist):
    res = owner.post(
        f"/api/v1/models/{model.pk}/versions",
        {"version": "3", "artifact_uri": "s3://m/churn/3", "trained_by": "oscar"},
        format="json",
    )
    assert res.status_code == 201, res.content
    assert res.json()["trained_by"] == "oscar"
    listed = owner.get(f"/api/v1/models/{model.pk}/versions").json()["results"]
    assert [(v["version"], v["trained_by"]) for v in listed] == [("3", "oscar"), ("2", "dana"), ("1", "dana")]
    unknown = owner.post(
        f"/api/v1/models/{model.pk}/versions",
        {"version": "4", "artifact_uri": "s3://m/churn/4", "trained_by": "nobody"},
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "trained_by"
    assert (
        history.as_of(
            "catalog.model_version",
            res.json()["id"],
            history.timeline("catalog.model_version", res.json()["id"])[0].valid_from,
        )["trained_by"]
        == "oscar"
    )


# --- the services, with their reference time -------------------------------------------------------------------------


def test_services_take_datetimes_and_a_reference_time(data_scientist, versions):
    with pytest.raises(ValidationFailed) as future:
        services.deployment_create(
            actor=data_scientist, model_version=versions["1"], environment="prod", deployed_from=T3, now=T2
        )
    assert future.value.problems[0].field == "deployed_from"
    services.deployment_create(
        actor=data_scientist, model_version=versions["1"], environment="prod", deployed_from=T1, now=T2
    )

    def one(produced_at):
        rec = {"model": "churn", "produced_at": produced_at, "input_ref": "s3://in/x", "output_digest": "d"}
        return services.results_ingest(actor=data_scientist, records=[rec], now=T2)

    assert one(T2).created == 1  # exactly now is not the future
    for produced_at, code in ((T2 + US, "future_datetime"), (T2.replace(tzinfo=None), "naive_datetime")):
        with pytest.raises(ValidationFailed) as exc:
            one(produced_at)
        assert (exc.value.problems[0].field, exc.value.problems[0].code) == ("records[0].produced_at", code)
