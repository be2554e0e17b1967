"""The admin site's base class: every write goes through a service, so it is audited, historised and re-indexed
like the same change made through the API (``tests/steward/test_admin_writes.py`` checks every registered model).

Subclasses implement ``save_model`` and ``delete_model`` with a service call (or deny the permission where no
service exists). Bulk "delete selected" deletes one object at a time through ``delete_model``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from steward.errors import DomainError

__all__ = ["ServiceAdmin"]


class ServiceAdmin(admin.ModelAdmin):
    """Routes saves and deletes through services; a domain error becomes an admin error message."""

    def _call(self, request: HttpRequest, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(actor=request.user, **kwargs)
        except DomainError as exc:
            self.message_user(request, exc.message, level=messages.ERROR)
            return None

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Bulk delete: each object through ``delete_model`` (its service: audit, history, index)."""
        for obj in queryset:
            self.delete_model(request, obj)
