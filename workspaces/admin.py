"""Admin: projects and their members, templates (each write audited, ``governance.admin.AuditedRecordAdmin``);
workspaces read-only (changes go through the API's services)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from governance.admin import AuditedRecordAdmin
from workspaces.models import Project, Template, Workspace, WorkspaceDataset, WorkspaceEvent


@admin.register(Project)
class ProjectAdmin(AuditedRecordAdmin):
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    filter_horizontal = ["members"]


@admin.register(Template)
class TemplateAdmin(AuditedRecordAdmin):
    list_display = ["name", "title", "image", "cpu_millis", "memory_bytes", "gpu", "enabled", "position"]
    list_editable = ["enabled", "position"]


_DATASET_INLINE_FIELDS = ("dataset", "grant", "source_grant", "mounted", "unmounted_reason", "credentials_expire_at")


class WorkspaceDatasetInline(admin.TabularInline):
    model = WorkspaceDataset
    fields = _DATASET_INLINE_FIELDS
    readonly_fields = _DATASET_INLINE_FIELDS
    extra = 0
    can_delete = False


_EVENT_INLINE_FIELDS = ("at", "kind", "from_state", "to_state", "message", "actor", "repeats", "last_at")


class WorkspaceEventInline(admin.TabularInline):
    model = WorkspaceEvent
    fields = _EVENT_INLINE_FIELDS
    readonly_fields = _EVENT_INLINE_FIELDS
    extra = 0
    can_delete = False


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "template", "state", "desired_state", "connector", "created_at"]
    list_filter = ["state", "desired_state", "connector", "template"]
    search_fields = ["name", "owner__username", "id"]
    inlines = [WorkspaceDatasetInline, WorkspaceEventInline]
    readonly_fields = [f.name for f in Workspace._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
