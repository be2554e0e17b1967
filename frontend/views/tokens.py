"""Personal API tokens: create (the secret is shown once) and revoke."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from frontend.once import no_store, secret_pop, secret_stash
from steward.errors import DomainError
from steward.identity import authenticated_user


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """GET lists the tokens (and, once, a secret just created); POST creates one and redirects (PRG), so a
    reload never repeats the answer that carries the secret."""
    context = {"tokens": ApiToken.objects.filter(user=authenticated_user(request.user)), "secret": None, "error": ""}
    if request.method == "POST":
        try:
            days = int(request.POST.get("expires_in_days") or 90)
            _, secret = token_create(
                actor=request.user, user=request.user, name=request.POST.get("name", ""), expires_in_days=days
            )
        except (DomainError, ValueError) as exc:
            context["error"] = getattr(exc, "message", "Expiry must be a number of days.")
        else:
            secret_stash(request, "tokens", {"secret": secret})
            return redirect("frontend:tokens", permanent=False)
    else:
        context["secret"] = (secret_pop(request, "tokens") or {}).get("secret")
    return no_store(render(request, "frontend/tokens.html", context, status=400 if context["error"] else 200))


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: str) -> HttpResponse:
    try:
        token = ApiToken.objects.filter(user=authenticated_user(request.user), pk=UUID(pk)).first()
    except ValueError:  # not a UUID: no such token, rather than a database error
        token = None
    if token is None:
        raise Http404("No such token.")
    token_revoke(actor=request.user, token=token)
    return redirect("frontend:tokens")
