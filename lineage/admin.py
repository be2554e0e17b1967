"""Django admin for producers' namespaces: assignments go through the producers service (checks, audit)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest

from lineage.models import NamespaceProducer
from lineage.services.producers import namespace_producer_assign, namespace_producer_remove
from steward.errors import DomainError


@admin.register(NamespaceProducer)
class NamespaceProducerAdmin(admin.ModelAdmin):
    """Assign namespaces to producers (service accounts); first producers' claims show with no assigner."""

    list_display = ["namespace", "producer", "assigned_by", "created_at"]
    list_filter = ["namespace"]
    search_fields = ["namespace", "producer__username"]
    fields = ["namespace", "producer"]
    autocomplete_fields = ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def save_model(self, request: HttpRequest, obj: NamespaceProducer, form: Any, change: bool) -> None:
        try:
            row = namespace_producer_assign(
                actor=request.user, namespace=obj.namespace, username=obj.producer.get_username()
            )
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = row.pk

    def delete_model(self, request: HttpRequest, obj: NamespaceProducer) -> None:
        namespace_producer_remove(actor=request.user, pk=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            namespace_producer_remove(actor=request.user, pk=obj.pk)
