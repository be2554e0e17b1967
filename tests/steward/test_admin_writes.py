"""Every write the Django admin can make goes through a service: audited (and historised, re-indexed) like the
same change through the API. Walks ``admin.site._registry``, so a model registered later is checked too."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import ApiToken
from accounts.services import token_create
from catalog.models import Dataset, MLModel, ModelVersion
from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from ledger.history import as_of
from ledger.models import AuditEvent
from steward.identity import viewer_for
from tests.conftest import make_user, spec
from workspaces.models import Template

pytestmark = pytest.mark.django_db

OUR_APPS = (
    "steward",
    "ledger",
    "accounts",
    "connectors",
    "catalog",
    "lineage",
    "sources",
    "governance",
    "workspaces",
    "compliance",
    "frontend",
)


def _overrides(model_admin: admin.ModelAdmin, name: str) -> bool:
    """The method is Steward's, not Django's default (which writes the row and nothing else)."""
    method = getattr(type(model_admin), name)
    return method.__module__.split(".")[0] in OUR_APPS


@pytest.fixture
def superuser(admin_user) -> User:
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    return admin_user


def test_no_registered_admin_writes_around_a_service(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    skipping: list[str] = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label
        if model_admin.has_delete_permission(request):
            for method in ("delete_model", "delete_queryset"):
                if not _overrides(model_admin, method):
                    skipping.append(f"{label}: {method} deletes without a service")
        if model_admin.has_add_permission(request) or model_admin.has_change_permission(request, model()):
            if not _overrides(model_admin, "save_model"):
                skipping.append(f"{label}: save_model saves without a service")
        for name, (func, *_rest) in model_admin.get_actions(request).items():
            if name != "delete_selected" and func.__module__.split(".")[0] not in OUR_APPS:
                skipping.append(f"{label}: action {name} is not Steward's")
    assert skipping == []


def _bulk_delete(client: Any, model: type, pks: list[Any]) -> Any:
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    return client.post(url, {"action": "delete_selected", "_selected_action": [str(p) for p in pks], "post": "yes"})


def test_bulk_delete_of_datasets_is_audited_historised_and_unindexed(
    client, superuser, data_steward, django_capture_on_commit_callbacks
):
    from catalog import services

    with django_capture_on_commit_callbacks(execute=True):
        made = [
            services.dataset_create(actor=data_steward, spec=spec({"namespace": "s3://lake", "name": f"walrus/{n}"}))
            for n in ("a", "b")
        ]
    viewer = viewer_for(superuser)
    assert get_backend().search(SearchQuery(q="walrus"), viewer).total == 2
    client.force_login(superuser)

    with django_capture_on_commit_callbacks(execute=True):
        res = _bulk_delete(client, Dataset, [d.pk for d in made])

    assert res.status_code == 302, res.content[:2000]
    assert not Dataset.objects.filter(pk__in=[d.pk for d in made]).exists()
    deleted = AuditEvent.objects.filter(action="catalog.dataset.delete", actor_name="ada")
    assert sorted(deleted.values_list("target_id", flat=True)) == sorted(str(d.pk) for d in made)
    for d in made:
        assert as_of("catalog.dataset", d.pk, timezone.now()) is None  # history says it is gone
    assert get_backend().search(SearchQuery(q="walrus"), viewer).total == 0


def test_model_versions_and_tokens_cannot_be_deleted_in_the_admin(client, superuser, data_steward):
    from catalog import services

    model = services.model_create(actor=data_steward, name="churn", description="", classification="C1")
    version = services.model_version_create(actor=data_steward, model=model, version="1", artifact_uri="s3://m/1")
    token, _secret = token_create(actor=superuser, user=superuser, name="ci")
    client.force_login(superuser)

    assert client.post(f"/admin/catalog/modelversion/{version.pk}/delete/", {"post": "yes"}).status_code == 403
    _bulk_delete(client, ModelVersion, [version.pk])
    assert client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"}).status_code == 403
    _bulk_delete(client, ApiToken, [token.pk])

    assert ModelVersion.objects.filter(pk=version.pk).exists() and ApiToken.objects.filter(pk=token.pk).exists()
    # Revoking stays possible, through the service.
    res = client.post(
        "/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [str(token.pk)], "index": 0}
    )
    assert res.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="governance.token.revoke", target_id=str(token.pk)).exists()
    # Deleting the model (through its service) still removes its versions.
    assert MLModel.objects.filter(pk=model.pk).exists()


def test_users_groups_templates_changed_in_the_admin_are_audited_without_secrets(
    client, superuser, workspace_templates
):
    client.force_login(superuser)
    victim = make_user("vic", "data-scientist")
    group = Group.objects.create(name="sales-eng")

    res = client.post(
        f"/admin/auth/user/{victim.pk}/password/", {"password1": "n3w-S3cret-pw!", "password2": "n3w-S3cret-pw!"}
    )
    assert res.status_code == 302, res.content[:2000]
    res = client.post("/admin/auth/group/add/", {"name": "analysts"})
    assert res.status_code == 302, res.content[:2000]
    assert _bulk_delete(client, Group, [group.pk]).status_code == 302
    assert _bulk_delete(client, User, [victim.pk]).status_code == 302
    template = Template.objects.get(name="vscode")
    assert _bulk_delete(client, Template, [template.pk]).status_code == 302

    actions = set(AuditEvent.objects.filter(actor_name="ada").values_list("action", "target_repr"))
    assert {
        ("auth.user.password_set", "vic"),
        ("auth.group.create", "analysts"),
        ("auth.group.delete", "sales-eng"),
        ("auth.user.delete", "vic"),
        ("workspaces.template.delete", "vscode"),
    } <= actions
    assert not User.objects.filter(username="vic").exists() and not Template.objects.filter(name="vscode").exists()
    for event in AuditEvent.objects.filter(action__startswith="auth.user"):
        assert "password" not in str(event.before) and "n3w-S3cret" not in str(event.after)
