from rest_framework.pagination import CursorPagination


class StewardCursorPagination(CursorPagination):
    """Cursor pagination, stable under concurrent writes; ``?page_size=`` up to 500."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    ordering: str | tuple[str, ...] = "-created_at"  # a field, or several (DRF accepts both)
