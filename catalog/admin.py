"""Django admin for the catalog. Changes go through the same services as the API (audit, indexing)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from catalog import services
from catalog.models import Dataset, MLModel, ModelVersion, SchemaField, Tag, TagAssignment
from catalog.validation import DatasetSpec
from steward.admin import ServiceAdmin


class SchemaFieldInline(admin.TabularInline):
    model = SchemaField
    extra = 0
    can_delete = False
    readonly_fields = ["name", "type", "ordinal", "description", "classification"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TagAssignmentInline(admin.TabularInline):
    model = TagAssignment
    extra = 0
    can_delete = False
    readonly_fields = ["tag", "field", "created_at", "created_by"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(ServiceAdmin):
    list_display = ["name", "namespace", "platform", "classification", "effective_classification", "updated_at"]
    list_filter = ["platform", "effective_classification"]
    search_fields = ["name", "namespace", "description"]
    readonly_fields = ["id", "platform", "effective_classification", "created_at", "updated_at"]
    fields = [
        "id",
        "namespace",
        "name",
        "platform",
        "description",
        "classification",
        "effective_classification",
        "properties",
        "created_at",
        "updated_at",
    ]
    inlines = [SchemaFieldInline, TagAssignmentInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "namespace", "name"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        spec = DatasetSpec(
            namespace=obj.namespace,
            name=obj.name,
            description=obj.description,
            classification=obj.classification,
            properties=obj.properties,
        )
        if change:
            self._call(request, services.dataset_update, dataset=Dataset.objects.get(pk=obj.pk), spec=spec)
        else:
            created = self._call(request, services.dataset_create, spec=spec)
            if created is not None:
                obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Inlines are read-only; tags and fields change through the API or the dataset page."""

    def delete_model(self, request: HttpRequest, obj: Dataset) -> None:
        self._call(request, services.dataset_delete, dataset=obj)


@admin.register(Tag)
class TagAdmin(ServiceAdmin):
    list_display = ["key", "implied_level", "propagates", "description"]
    search_fields = ["key", "description"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["key", "created_at"] if obj else ["created_at"]

    def save_model(self, request: HttpRequest, obj: Tag, form: Any, change: bool) -> None:
        values = {"description": obj.description, "implied_level": obj.implied_level, "propagates": obj.propagates}
        if change:
            self._call(request, services.tag_update, tag=Tag.objects.get(pk=obj.pk), **values)
        else:
            created = self._call(request, services.tag_create, key=obj.key, **values)
            if created is not None:
                obj.pk = created.pk

    def delete_model(self, request: HttpRequest, obj: Tag) -> None:
        self._call(request, services.tag_delete, tag=obj)


_VERSION_INLINE_FIELDS = ("version", "stage", "framework", "artifact_uri", "artifact_digest", "created_at")


class ModelVersionInline(admin.TabularInline):
    model = ModelVersion
    extra = 0
    can_delete = False
    fields = _VERSION_INLINE_FIELDS
    readonly_fields = _VERSION_INLINE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MLModel)
class MLModelAdmin(ServiceAdmin):
    list_display = ["name", "effective_classification", "updated_at"]
    search_fields = ["name", "description"]
    fields = ["id", "name", "description", "classification", "effective_classification", "created_at", "updated_at"]
    readonly_fields = ["id", "effective_classification", "created_at", "updated_at"]
    inlines = [ModelVersionInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: MLModel, form: Any, change: bool) -> None:
        if change:
            self._call(
                request,
                services.model_update,
                model=MLModel.objects.get(pk=obj.pk),
                description=obj.description,
                classification=obj.classification,
            )
        else:
            created = self._call(
                request,
                services.model_create,
                name=obj.name,
                description=obj.description,
                classification=obj.classification,
            )
            if created is not None:
                obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Versions are registered through the API."""

    def delete_model(self, request: HttpRequest, obj: MLModel) -> None:
        self._call(request, services.model_delete, model=obj)


@admin.register(ModelVersion)
class ModelVersionAdmin(ServiceAdmin):
    list_display = ["model", "version", "stage", "framework", "created_at"]
    list_filter = ["stage", "framework"]
    fields = [
        "model",
        "version",
        "stage",
        "description",
        "artifact_uri",
        "artifact_digest",
        "image_digest",
        "code_commit",
        "framework",
        "parameters",
        "metrics",
        "created_at",
    ]
    readonly_fields = [
        "model",
        "version",
        "artifact_uri",
        "artifact_digest",
        "image_digest",
        "code_commit",
        "framework",
        "parameters",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """No service deletes a version (compliance keeps them); deleting the model removes its versions."""
        return False

    def save_model(self, request: HttpRequest, obj: ModelVersion, form: Any, change: bool) -> None:
        self._call(
            request,
            services.model_version_update,
            version=ModelVersion.objects.get(pk=obj.pk),
            stage=obj.stage,
            description=obj.description,
            metrics=obj.metrics,
        )
