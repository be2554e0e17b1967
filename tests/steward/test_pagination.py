"""The API's cursor pagination: its ordering may be one field name or several."""

from __future__ import annotations

from base64 import b64encode

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from accounts.models import ApiToken
from steward.api.pagination import StewardCursorPagination
from steward.errors import ValidationFailed


def _request(cursor: str) -> Request:
    return Request(APIRequestFactory().get("/api/v1/tokens", {"cursor": cursor}))


def test_a_single_field_ordering_is_read_as_the_field_not_its_first_character():
    paginator = StewardCursorPagination()
    assert paginator.ordering == "-created_at"  # the class default is a string
    assert paginator.first_ordering() == "-created_at"
    paginator.ordering = ("name", "id")
    assert paginator.first_ordering() == "name"


def test_a_cursor_whose_position_is_not_a_time_is_refused_on_a_list_ordered_by_one_time_field():
    """With ``ordering = "-created_at"`` as a string, the check used to look up the field ``""`` (the first
    character, ``-``, stripped), find none, and let a position such as ``junk`` reach the database."""
    paginator = StewardCursorPagination()
    paginator._model = ApiToken
    junk = b64encode(b"p=junk").decode()
    with pytest.raises(ValidationFailed) as refused:
        paginator.decode_cursor(_request(junk))
    assert [p.field for p in refused.value.problems] == ["cursor"]
    good = b64encode(b"p=2026-12-02+10%3A00%3A00%2B00%3A00").decode()
    assert paginator.decode_cursor(_request(good)).position == "2026-12-02 10:00:00+00:00"


@pytest.mark.django_db
def test_the_token_list_refuses_a_crafted_cursor(client_for, data_scientist):
    res = client_for(data_scientist).get("/api/v1/tokens", {"cursor": b64encode(b"p=junk").decode()})
    assert res.status_code == 400
    assert "cursor" in res.content.decode()
