"""Cursor orders of catalog lists."""

from __future__ import annotations

from steward.api.pagination import StewardCursorPagination


class NamePagination(StewardCursorPagination):
    ordering = ("name", "id")


class NewestFirstPagination(StewardCursorPagination):
    ordering = ("-created_at", "-id")


class KeyPagination(StewardCursorPagination):
    ordering = ("key",)
