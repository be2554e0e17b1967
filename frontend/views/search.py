"""The search page and its typeahead."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.classification import levels
from catalog.search import get_backend
from catalog.search.backends.base import FACETS, SearchQuery
from frontend.htmx import is_htmx
from steward.identity import viewer_for

PAGE_SIZE = 25
FACET_PARAM = {
    "kind": "kind",
    "platform": "platform",
    "classification": "classification",
    "tag": "tag",
    "owner": "owner",
}
# Removed datasets (gone from their source) are left out unless this is "1" (a toggle in the filters).
INCLUDE_REMOVED = "include_removed"


def _toggle_url(params: dict[str, list[str]], facet: str, value: str) -> str:
    chosen = dict(params)
    values = list(chosen.get(facet, []))
    if value in values:
        values.remove(value)
    else:
        values.append(value)
    chosen[facet] = values
    chosen.pop("offset", None)
    return "?" + urlencode([(k, v) for k, vs in chosen.items() for v in vs if v])


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Search: query box, facets and ranked results; htmx requests get only the results area."""
    params = {key: request.GET.getlist(key) for key in ("q", *FACET_PARAM.values(), INCLUDE_REMOVED)}
    try:
        offset = max(0, min(int(request.GET.get("offset", 0)), 10_000))
    except ValueError:
        offset = 0
    query = SearchQuery(
        q=request.GET.get("q", "")[:200],
        kinds=params["kind"],
        platforms=params["platform"],
        tags=params["tag"],
        classifications=params["classification"],
        owners=params["owner"],
        limit=PAGE_SIZE,
        offset=offset,
        include_removed="1" in params[INCLUDE_REMOVED],
    )
    results = get_backend().search(query, viewer_for(request.user))
    facets = [
        (
            name,
            [
                (value, count, value in params[name], _toggle_url(params, name, value))
                for value, count in results.facets.get(name, [])
            ],
        )
        for name in FACETS
    ]
    base = [(k, v) for k, vs in params.items() for v in vs if v]
    context = {
        "query": query,
        "results": results,
        "facets": facets,
        "active_filters": [(k, v, _toggle_url(params, k, v)) for k, vs in params.items() if k != "q" for v in vs],
        "prev_url": "?" + urlencode([*base, ("offset", max(0, offset - PAGE_SIZE))]) if offset else None,
        "next_url": "?" + urlencode([*base, ("offset", offset + PAGE_SIZE)])
        if offset + PAGE_SIZE < results.total
        else None,
        "past_end": offset > 0 and not results.hits and results.total > 0,
        "first_url": "?" + urlencode(base),
        "first": offset + 1,
        "last": offset + len(results.hits),
        "levels": {lv.code: lv for lv in levels()},
        "include_removed": query.include_removed,
        "include_removed_url": _toggle_url(params, INCLUDE_REMOVED, "1"),
    }
    template = "frontend/partials/search_results.html" if is_htmx(request) else "frontend/search.html"
    return render(request, template, context)


@login_required
def suggest(request: HttpRequest) -> HttpResponse:
    """Typeahead suggestions (partial) for the search box."""
    found = get_backend().suggest(request.GET.get("q", "")[:200], viewer_for(request.user), limit=8)
    return render(request, "frontend/partials/suggestions.html", {"suggestions": found})
