"""Admin: sources through their services (audited; credentials write-only, never shown), runs read-only."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from sources import services
from sources.models import Source, SourceRun
from steward.admin import ServiceAdmin

_FIELDS = ("name", "kind", "config", "schedule", "enabled", "owner")


class SourceForm(forms.ModelForm):
    credentials = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text='JSON, e.g. {"user": "crawler", "password": "..."}; leave empty to keep the stored ones.',
    )

    class Meta:
        model = Source
        fields = list(_FIELDS)

    def clean_credentials(self) -> dict[str, Any] | None:
        raw = self.cleaned_data.get("credentials") or ""
        if not raw.strip():
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Not JSON.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A JSON object.")
        return value


@admin.register(Source)
class SourceAdmin(ServiceAdmin):
    form = SourceForm
    list_display = ["name", "kind", "schedule", "enabled", "next_run_at", "owner"]
    search_fields = ["name"]

    def save_model(self, request: HttpRequest, obj: Source, form: Any, change: bool) -> None:
        data: dict[str, Any] = {k: form.cleaned_data.get(k) for k in _FIELDS}
        data["owner"] = data["owner"].username if data["owner"] else None
        if form.cleaned_data.get("credentials") is not None:
            data["credentials"] = form.cleaned_data["credentials"]
        if change:
            saved = self._call(request, services.source_update, source=Source.objects.get(pk=obj.pk), data=data)
        else:
            saved = self._call(request, services.source_create, data=data)
        if saved is not None:
            obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Source) -> None:
        self._call(request, services.source_delete, source=obj)


@admin.register(SourceRun)
class SourceRunAdmin(admin.ModelAdmin):
    list_display = ["source", "state", "trigger", "queued_at", "finished_at", "created", "updated", "removed"]
    list_filter = ["state"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
