"""The one cursor pagination of the API's lists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

from steward.errors import ValidationFailed

__all__ = ["StewardCursorPagination"]


def _ordering_field(model: type[models.Model], path: str) -> models.Field | None:
    """The model field a (possibly ``__``-spanning) ordering name ends on, or ``None`` (an annotation)."""
    field = None
    for part in path.split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if field.is_relation and field.related_model is not None:
            model = field.related_model
    return field if isinstance(field, models.Field) else None


class StewardCursorPagination(CursorPagination):
    """Cursor pagination, stable under concurrent writes; ``?page_size=`` up to 500.

    A cursor this list did not give out (undecodable, or naming a position that is not a value of the ordering
    field, such as ``cursor=cD1qdW5r``, which is ``p=junk``) is a 400 naming ``cursor``, never a database error.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering: str | tuple[str, ...] = "-created_at"  # a field, or several (DRF accepts both)

    _model: type[models.Model] | None = None

    def paginate_queryset(self, queryset: Any, request: Any, view: Any = None) -> list[Any] | None:
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Any) -> Cursor | None:
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise self._invalid() from None
        if cursor is None or cursor.position is None:
            return cursor
        if "\x00" in str(cursor.position):  # a str at runtime (DRF's stubs say int)
            raise self._invalid()
        field = None if self._model is None else _ordering_field(self._model, self.first_ordering().lstrip("-"))
        if field is not None:
            try:
                value = field.to_python(cursor.position)
                if isinstance(value, datetime) and value.tzinfo is not None:
                    value.astimezone(UTC)
            except (DjangoValidationError, ValueError, TypeError, OverflowError):
                raise self._invalid() from None
        return cursor

    def first_ordering(self) -> str:
        """The leading ordering field: ``ordering`` may be one name (``"-created_at"``) or several; indexing the
        string would give its first character."""
        ordering = self.ordering
        return ordering if isinstance(ordering, str) else ordering[0]

    @staticmethod
    def _invalid() -> ValidationFailed:
        return ValidationFailed.one("cursor", "Not a cursor this list gave out; follow the next/previous links.")
