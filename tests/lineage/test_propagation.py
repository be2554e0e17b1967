"""Propagation rules of docs/architecture.md §4, one readable example each."""

from __future__ import annotations

import pytest

from lineage.models import Job, PropagatedTag
from lineage.propagation import drain
from lineage.selectors import dataset_explain, dataset_tags
from lineage.services.declassify import declassification_decide, declassification_request, declassification_revoke
from lineage.services.ingest import job_end_edges
from steward.errors import PermissionDenied
from tests.lineage.conftest import ds
from tests.lineage.events import at, complete, dataset, run_event

pytestmark = pytest.mark.django_db


def tag_keys(name: str) -> set[str]:
    d = ds(name)
    direct = {a.tag.key for a in d.tag_assignments.all()}
    return direct | set(
        PropagatedTag.objects.filter(dataset=d, valid_to__isnull=True).values_list("tag__key", flat=True)
    )


def level(name: str) -> str:
    return ds(name).effective_classification


def test_a_tag_flows_downstream_and_raises_classification(emit, tags, tag):
    emit(complete("load", ["raw"], ["clean"]), complete("report", ["clean"], ["summary"]))
    assert level("summary") == "C1"
    tag("raw", "email")
    assert tag_keys("clean") == {"email"} and tag_keys("summary") == {"email"}
    assert level("clean") == "C3" and level("summary") == "C3"


def test_removing_the_source_removes_every_propagated_copy(emit, tags, tag, untag):
    emit(complete("load", ["raw"], ["clean"]), complete("report", ["clean"], ["summary"]))
    tag("raw", "secret")
    untag("raw", "secret")
    assert tag_keys("clean") == set() and tag_keys("summary") == set()
    assert level("summary") == "C1"


def test_a_cycle_does_not_keep_a_tag_alive(emit, tags, tag, untag):
    emit(complete("a2b", ["a"], ["b"]), complete("b2c", ["b"], ["c"]), complete("c2b", ["c"], ["b"]))
    tag("a", "email")
    assert tag_keys("b") == tag_keys("c") == {"email"}
    untag("a", "email")
    assert tag_keys("b") == tag_keys("c") == set()


def test_a_diamond_keeps_the_tag_until_its_last_path_goes(emit, tags, tag, producer):
    emit(
        complete("left", ["src"], ["l"]),
        complete("right", ["src"], ["r"]),
        complete("join", ["l", "r"], ["sink"]),
        complete("side", ["other"], ["r"]),
    )
    tag("other", "secret")
    assert "secret" in tag_keys("sink")
    # The job "side" stops reading "other": r and sink lose the tag.
    emit(run_event("side", "COMPLETE", inputs=[], outputs=[dataset("r")], when=at(5)))
    assert tag_keys("r") == set() and tag_keys("sink") == set()
    tag("src", "email")
    job_end_edges(actor=producer, job_id=Job.objects.get(name="left").pk)
    drain()
    assert tag_keys("sink") == {"email"}  # still through "right"
    assert tag_keys("l") == set()


def test_column_lineage_carries_column_tags_to_columns(emit, tags, tag):
    emit(
        run_event(
            "load",
            "COMPLETE",
            inputs=[dataset("users", fields=["id", "email", "country"])],
            outputs=[
                dataset(
                    "contacts",
                    fields=["uid", "mail", "country"],
                    columns={"mail": [("users", "email")], "uid": [("users", "id")]},
                )
            ],
        )
    )
    tag("users", "email", field="email")
    tag("users", "secret")  # dataset-level: flows at dataset level
    rows = {(r.field, r.tag.key) for r in PropagatedTag.objects.filter(dataset=ds("contacts"), valid_to__isnull=True)}
    assert rows == {("mail", "email"), ("", "secret")}
    assert level("contacts") == "C4"


def test_without_column_lineage_column_tags_arrive_at_dataset_level(emit, tags, tag):
    emit(run_event("load", "COMPLETE", inputs=[dataset("users", fields=["email"])], outputs=[dataset("copy")]))
    tag("users", "email", field="email")
    rows = {(r.field, r.tag.key) for r in PropagatedTag.objects.filter(dataset=ds("copy"), valid_to__isnull=True)}
    assert rows == {("", "email")}


def test_a_column_tag_does_not_follow_column_edges_of_other_columns(emit, tags, tag):
    emit(
        run_event(
            "load",
            "COMPLETE",
            inputs=[dataset("users", fields=["id", "email"])],
            outputs=[dataset("ids", fields=["uid"], columns={"uid": [("users", "id")]})],
        )
    )
    tag("users", "email", field="email")
    assert tag_keys("ids") == set()


def test_tags_that_do_not_propagate_stay_put(emit, tags, tag):
    emit(complete("load", ["raw"], ["clean"]))
    tag("raw", "internal-note")
    assert tag_keys("clean") == set()


def test_self_loop_is_harmless(emit, tags, tag, untag):
    emit(complete("dedupe", ["t"], ["t"]), complete("out", ["t"], ["u"]))
    tag("t", "email")
    assert tag_keys("u") == {"email"}
    untag("t", "email")
    assert tag_keys("t") == tag_keys("u") == set()


def test_declassification_blocks_named_tags_across_one_job(
    emit, tags, tag, data_owner, data_steward, privacy_officer, admin_user
):
    emit(complete("aggregate", ["people"], ["stats"]), complete("publish", ["stats"], ["site"]))
    tag("people", "email")
    tag("people", "secret")
    job = Job.objects.get(name="aggregate")
    request = declassification_request(
        actor=privacy_officer, job_id=job.pk, tag_keys=["email"], justification="Counts per region only"
    )
    with pytest.raises(PermissionDenied):
        declassification_decide(actor=admin_user, pk=request.pk, approve=True)  # not a steward
    declassification_decide(actor=data_steward, pk=request.pk, approve=True, reason="k-anonymous")
    drain()
    assert tag_keys("stats") == {"secret"} and tag_keys("site") == {"secret"}
    declassification_revoke(actor=data_steward, pk=request.pk, reason="aggregation changed")
    drain()
    assert tag_keys("site") == {"email", "secret"}


def test_a_steward_may_not_approve_their_own_declassification(emit, tags, data_steward):
    emit(complete("aggregate", ["people"], ["stats"]))
    request = declassification_request(
        actor=data_steward, job_id=Job.objects.get(name="aggregate").pk, tag_keys=["email"], justification="x"
    )
    with pytest.raises(PermissionDenied, match="your own"):
        declassification_decide(actor=data_steward, pk=request.pk, approve=True)


def test_explain_returns_a_path_from_the_direct_assignment(emit, tags, tag, admin_user):
    emit(complete("a2b", ["a"], ["b"]), complete("b2c", ["b"], ["c"]), complete("c2d", ["c"], ["d"]))
    tag("a", "secret")
    why = dataset_explain(user=admin_user, pk=ds("d").pk, tag="secret")
    assert why["source"]["name"] == "a"
    assert [hop["job"]["name"] for hop in why["path"]] == ["a2b", "b2c", "c2d"]
    assert [hop["to"]["name"] for hop in why["path"]] == ["b", "c", "d"]


def test_tags_are_readable_as_of_a_past_time(emit, tags, tag, untag, admin_user):
    from django.utils import timezone

    emit(complete("load", ["raw"], ["clean"]))
    tag("raw", "email")
    while_tagged = timezone.now()
    untag("raw", "email")
    assert dataset_tags(user=admin_user, pk=ds("clean").pk)["propagated"] == []
    past = dataset_tags(user=admin_user, pk=ds("clean").pk, at=while_tagged)["propagated"]
    assert [(p["tag"], p["source"]["name"]) for p in past] == [("email", "raw")]


def test_tags_as_of_a_past_time_give_the_direct_tags_and_level_of_then(
    emit, tags, tag, untag, data_steward, client_for
):
    """``/datasets/{id}/tags?at=`` answers for that instant: direct tags, propagated tags and the level."""
    from django.utils import timezone

    emit(complete("load", ["raw"], ["clean"]))
    before = timezone.now()
    tag("raw", "email")
    tag("raw", "secret")
    while_tagged = timezone.now()
    untag("raw", "email")
    untag("raw", "secret")
    api = client_for(data_steward)

    def get(name: str, when=None) -> dict:
        params = {"at": when.isoformat()} if when else {}
        response = api.get(f"/api/v1/datasets/{ds(name).pk}/tags", params)
        assert response.status_code == 200, response.content
        return response.json()

    now_raw, then_raw = get("raw"), get("raw", while_tagged)
    assert now_raw["direct"] == [] and now_raw["effective_classification"] == "C1"
    assert [(d["tag"], d["field"], d["implied_level"]) for d in then_raw["direct"]] == [
        ("email", None, "C3"),
        ("secret", None, "C4"),
    ]
    assert then_raw["effective_classification"] == "C4"
    then_clean = get("clean", while_tagged)
    assert then_clean["direct"] == [] and then_clean["effective_classification"] == "C4"
    assert get("clean")["effective_classification"] == "C1"
    assert get("clean", before)["effective_classification"] == "C1"
    why = api.get(f"/api/v1/datasets/{ds('raw').pk}/explain", {"tag": "email", "at": while_tagged.isoformat()})
    assert why.status_code == 200 and why.json()["direct"] is True


def test_a_model_version_inherits_tags_of_its_training_inputs(emit, tags, tag, untag, admin_user):
    from catalog import services as catalog
    from catalog.models import MLModel

    run_id = "0195f0c2-7d5e-7c5a-9a53-5a1f1d2b0c01"
    emit(
        complete("prepare", ["customers"], ["features"]), complete("train", ["features"], ["model_out"], run_id=run_id)
    )
    model = catalog.model_create(actor=admin_user, name="churn")
    version = catalog.model_version_create(
        actor=admin_user, model=model, version="1", artifact_uri="s3://models/churn/1", training_run_id=run_id
    )
    version.refresh_from_db()
    assert version.inherited_tags == [] and version.effective_classification == "C1"
    tag("customers", "secret")
    version.refresh_from_db()
    assert version.inherited_tags == ["secret"] and version.effective_classification == "C4"
    assert MLModel.objects.get(pk=model.pk).effective_classification == "C4"
    untag("customers", "secret")
    version.refresh_from_db()
    assert version.inherited_tags == [] and MLModel.objects.get(pk=model.pk).effective_classification == "C1"


def test_a_version_registered_before_its_training_run_arrives_inherits_once_it_does(emit, tags, tag, admin_user):
    from catalog import services as catalog

    run_id = "0195f0c2-7d5e-7c5a-9a53-5a1f1d2b0c02"
    emit(complete("prepare", ["customers"], ["features"]))
    tag("customers", "email")
    model = catalog.model_create(actor=admin_user, name="churn")
    version = catalog.model_version_create(
        actor=admin_user, model=model, version="1", artifact_uri="s3://models/churn/1", training_run_id=run_id
    )
    emit(complete("train", ["features"], ["model_out"], run_id=run_id))
    version.refresh_from_db()
    assert version.inherited_tags == ["email"] and version.effective_classification == "C3"


def test_search_finds_datasets_by_their_propagated_tags(emit, tags, tag, admin_user):
    from catalog.search import get_backend
    from catalog.search.backends.base import SearchQuery
    from catalog.services.search import search_index
    from steward.identity import viewer_for

    emit(complete("load", ["raw"], ["clean"]))
    tag("raw", "email")
    search_index(kind="dataset", ids=[str(ds("raw").pk), str(ds("clean").pk)])
    found = get_backend().search(SearchQuery(tags=["email"]), viewer_for(admin_user))
    assert {h.qualified_name for h in found.hits} == {"raw", "clean"}
    assert {h.qualified_name: h.classification for h in found.hits} == {"raw": "C3", "clean": "C3"}


@pytest.mark.parametrize("inflow", ["edges", "holders"])
def test_tags_flowing_in_from_upstream_survive_a_recompute_downstream(emit, tags, tag, monkeypatch, admin_user, inflow):
    """A change downstream of a tagged dataset recomputes only its own region; the tag entering that region
    from upstream stays, keeps its origin, and reaches the new dataset (both ways of finding the inflow)."""
    from lineage import propagation

    monkeypatch.setattr(propagation, "INFLOW", inflow)
    emit(complete("load", ["raw"], ["clean"]), complete("report", ["clean"], ["summary"]))
    tag("raw", "email")
    emit(complete("export", ["summary"], ["extract"]), complete("other", ["elsewhere"], ["summary"]))
    assert tag_keys("clean") == tag_keys("summary") == tag_keys("extract") == {"email"}
    assert tag_keys("elsewhere") == set()
    assert level("extract") == "C3"
    why = dataset_explain(user=admin_user, pk=ds("extract").pk, tag="email")
    assert why["source"]["name"] == "raw"
    assert [hop["to"]["name"] for hop in why["path"]] == ["clean", "summary", "extract"]
