from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from catalog.search import get_backend
from catalog.search.backends.base import SearchQuery
from governance.identity import viewer_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The search page: query box, facets and ranked results."""
    params = request.GET
    query = SearchQuery(
        q=params.get("q", "")[:200],
        kinds=params.getlist("kind"),
        platforms=params.getlist("platform"),
        tags=params.getlist("tag"),
        classifications=params.getlist("classification"),
        owners=params.getlist("owner"),
        limit=25,
    )
    results = get_backend().search(query, viewer_for(request.user))
    return render(request, "frontend/search.html", {"query": query, "results": results})
