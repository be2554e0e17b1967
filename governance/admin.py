"""Django admin for governance records. Changes go through the services (validation, audit, hooks):
tokens and grants can be revoked, the policy gets new versions, requests and the audit log are read-only."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.http import HttpRequest

from accounts.models import ApiToken
from accounts.services import token_revoke
from governance.models import AccessRequest, AccessRequestItem, ApprovalSlot, Grant, PolicyVersion
from governance.selectors import policy_current
from governance.services.admin_records import (
    admin_record_delete,
    admin_record_password_set,
    admin_record_saved,
    admin_record_snapshot,
)
from governance.services.grants import grant_revoke
from governance.services.policy import policy_document_validate, policy_update
from ledger.models import AuditEvent
from steward.admin import ServiceAdmin
from steward.errors import DomainError, ValidationFailed
from steward.identity import Role, has_role

_BEFORE = "_steward_admin_before"


class AuditedRecordAdmin(ServiceAdmin):
    """For records with no domain service (users, groups, workspace templates and projects): the form saves the
    row, and ``governance.services.admin_records`` audits it (with its many-to-many members, after they are
    saved) in the admin view's transaction; deletes go through ``admin_record_delete``."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        before = admin_record_snapshot(type(obj)._default_manager.get(pk=obj.pk)) if change else None
        setattr(request, _BEFORE, {**getattr(request, _BEFORE, {}), id(obj): before})
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        self._call(request, admin_record_saved, obj=obj, before=getattr(request, _BEFORE, {}).get(id(obj)))

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        self._call(request, admin_record_delete, obj=obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by services: viewable here, never added, changed or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(ServiceAdmin):
    list_display = ["name", "user", "prefix", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "prefix"]
    exclude = ["digest"]
    readonly_fields = [
        "id",
        "user",
        "name",
        "prefix",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Actions need change permission in the list; the change form itself shows nothing editable.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Tokens are revoked (audited, kept), never deleted."""
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            self._call(request, token_revoke, token=token)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: no one adds, changes or deletes events here."""

    list_display = ["seq", "at", "actor_name", "action", "target_repr"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target_repr", "target_id", "action"]


class PolicyVersionForm(forms.ModelForm):
    """A whole policy document; checked by the policy service, whose problems become form errors."""

    class Meta:
        model = PolicyVersion
        fields = ["note", "purposes", "levels", "toxic_combinations"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data  # what ModelForm.clean returns
        if self.errors:
            return data
        try:
            clean = policy_document_validate(
                {k: data.get(k) for k in ("purposes", "levels", "toxic_combinations") if data.get(k) is not None}
            )
        except ValidationFailed as exc:
            for problem in exc.problems:
                top = (problem.field or "").split(".")[0].split("[")[0]
                target = top if top in self.fields else None
                self.add_error(target, f"{problem.field}: {problem.message}")
            return data
        data.update(clean)
        return data


@admin.register(PolicyVersion)
class PolicyVersionAdmin(admin.ModelAdmin):
    """Each save adds the next version (prefilled from the one in effect); versions are never changed."""

    form = PolicyVersionForm
    list_display = ["version", "created_at", "created_by_name", "note"]
    readonly_fields = ["version", "created_at", "created_by_name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        current = policy_current()
        return {**current.document(), "note": ""}

    def save_model(self, request: HttpRequest, obj: PolicyVersion, form: Any, change: bool) -> None:
        document = {k: form.cleaned_data[k] for k in ("purposes", "levels", "toxic_combinations")}
        new, created = policy_update(actor=request.user, document=document, note=form.cleaned_data.get("note", ""))
        obj.pk, obj.created_at, obj.created_by_name = new.pk, new.created_at, new.created_by_name
        if not created:
            self.message_user(request, f"Nothing changed: version {new.version} stays in effect.", messages.WARNING)


class AccessRequestItemInline(admin.TabularInline):
    model = AccessRequestItem
    extra = 0
    can_delete = False
    readonly_fields = ["dataset", "level"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApprovalSlotInline(admin.TabularInline):
    model = ApprovalSlot
    extra = 0
    can_delete = False
    readonly_fields = ["role", "dataset", "owner_fallback", "filled_by_name", "filled_at", "comment"]
    exclude = ["filled_by"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    """Requests are decided through the API (each approver in their own name), not here."""

    list_display = ["id", "requester", "purpose", "state", "created_at", "expires_at", "decided_at"]
    list_filter = ["state", "purpose"]
    search_fields = ["requester__username", "justification", "workspace_label"]
    inlines = [AccessRequestItemInline, ApprovalSlotInline]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = ["id", "user", "workspace_label", "dataset", "approved_level", "valid_from", "valid_until", "state"]
    list_filter = ["state", "approved_level"]
    search_fields = ["user__username", "workspace_label", "dataset__name"]
    list_select_related = ["user", "dataset"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected grants")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        done = 0
        for grant in queryset:
            try:
                grant_revoke(actor=request.user, grant=grant, reason=f"Revoked in the admin site by {request.user}.")
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{grant}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"Revoked {done} grant(s).")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Actions need change permission in the list; the change form itself shows nothing editable.
        return obj is None and has_role(request.user, Role.ADMIN)


# --- users and groups (roles are groups): Django's admin, with every write audited -------------------------------


class AuditedUserAdmin(AuditedRecordAdmin, UserAdmin):
    """Django's user admin; saves (with group membership) and deletes are audited (``auth.user.*``), never the
    password. Deleting a user also records the history of the grants and requests the cascade changes."""

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:  # the form saved the new password
                user = get_user_model()._default_manager.get(pk=id)
                self._call(request, admin_record_password_set, obj=user)
        return response


class AuditedGroupAdmin(AuditedRecordAdmin, GroupAdmin):
    """Django's group admin (Steward's roles are groups); saves and deletes are audited (``auth.group.*``)."""


for _model, _admin in ((get_user_model(), AuditedUserAdmin), (Group, AuditedGroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)


# --- login lockouts (django-axes): viewable; an admin unlocks by deleting the attempt record, audited ---------------


class LockoutAttemptAdmin(ReadOnlyAdmin):
    """Failed-login records; deleting one (unlocking the login) goes through ``admin_record_delete``."""

    list_display = ["username", "ip_address", "failures_since_start", "attempt_time"]
    search_fields = ["username", "ip_address"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, Role.ADMIN)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        ServiceAdmin._call(self, request, admin_record_delete, obj=obj)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class LockoutLogAdmin(ReadOnlyAdmin):
    """Login and failed-login logs: read-only."""


for _lockout_model, _lockout_admin in (
    (AccessAttempt, LockoutAttemptAdmin),
    (AccessLog, LockoutLogAdmin),
    (AccessFailureLog, LockoutLogAdmin),
):
    if admin.site.is_registered(_lockout_model):
        admin.site.unregister(_lockout_model)
    admin.site.register(_lockout_model, _lockout_admin)
