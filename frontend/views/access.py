"""Access pages: request access (one dataset or a cart of several), my access, the approval inbox, a request's
page with approve/deny, and the grants on my datasets with revoke. Every write goes through the services the
API uses; what the policy asks and who is awaited come from ``governance.portal``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from catalog import selectors as catalog_selectors
from frontend.once import no_store, secret_pop, secret_stash
from governance import portal, selectors
from governance.services import access_requests as requests_service
from governance.services.enforcement import grant_credentials_issue, grant_token_issue
from governance.services.grants import can_revoke, grant_revoke
from steward.durations import parse_duration
from steward.errors import DomainError, NotFound, ValidationFailed
from steward.identity import authenticated_user

CART = "access_cart"
UNITS = {"hours": "PT{}H", "days": "P{}D"}


def _next(request: HttpRequest, default: str) -> str:
    """Where to go after a form: the posted ``next`` when it is a path on this site, else ``default``."""
    target = request.POST.get("next") or ""
    ok = target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return target if ok else default


def _cart(request: HttpRequest) -> list[str]:
    return list(request.session.get(CART, []))


def _visible_datasets(request: HttpRequest, ids: list[str]) -> list[Any]:
    """The datasets of these ids the viewer may see (unknown or hidden ids are dropped silently)."""
    found = []
    for pk in dict.fromkeys(ids):
        try:
            found.append(catalog_selectors.dataset_get(user=request.user, pk=pk, with_fields=False))
        except (NotFound, ValidationFailed):
            continue
    return found


@login_required
@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    cart = _cart(request)
    for pk in request.POST.getlist("dataset"):
        if pk not in cart and _visible_datasets(request, [pk]):
            cart.append(pk)
    request.session[CART] = cart[:100]
    return redirect(_next(request, reverse("frontend:access-request")))


@login_required
@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    drop = set(request.POST.getlist("dataset"))
    request.session[CART] = [pk for pk in _cart(request) if pk not in drop]
    return redirect(reverse("frontend:access-request"))


def _duration(post: Any) -> Any:
    amount = (post.get("duration_amount") or "").strip()
    unit = post.get("duration_unit") or "hours"
    if not amount.isdigit() or unit not in UNITS:
        raise ValidationFailed.one("duration", "Give a whole number of hours or days.", "invalid_duration")
    return parse_duration(UNITS[unit].format(int(amount)), "duration")


@login_required
def access_request_new(request: HttpRequest) -> HttpResponse:
    """GET ``?dataset=<id>`` (repeatable) or the cart: the form, with what the policy will ask. POST: file it."""
    source = request.POST if request.method == "POST" else request.GET
    ids = source.getlist("dataset") or _cart(request)
    datasets = _visible_datasets(request, ids)
    context: dict[str, Any] = {
        "plan": portal.request_plan(datasets),
        "form": source,
        "from_cart": not source.getlist("dataset"),
        "error": None,
    }
    if request.method == "POST":
        try:
            created = requests_service.access_request_create(
                actor=request.user,
                datasets=[ds.pk for ds in datasets],
                purpose=request.POST.get("purpose", ""),
                justification=request.POST.get("justification", ""),
                duration=_duration(request.POST),
            )
        except DomainError as exc:
            context["error"] = exc
            return render(request, "frontend/access_request_new.html", context, status=exc.status)
        if context["from_cart"]:
            request.session[CART] = []
        return redirect("frontend:access-request-detail", pk=created.pk)
    return render(request, "frontend/access_request_new.html", context)


@login_required
def my_access(request: HttpRequest, error: DomainError | None = None) -> HttpResponse:
    """My requests and grants; a token or login just issued (POST then redirect here) is shown this once."""
    reqs = selectors.access_request_list(user=request.user).filter(requester=authenticated_user(request.user))[:200]
    secret = secret_pop(request, "my-access") if request.method == "GET" and error is None else None
    response = render(
        request,
        "frontend/my_access.html",
        {
            "requests": [(r, portal.awaited(r)) for r in reqs],
            "grants": portal.my_grants(user=request.user)[:200],
            "cart": _visible_datasets(request, _cart(request)),
            "error": error,
            "secret": secret,
        },
        status=error.status if error else 200,
    )
    return no_store(response)


def _request_or_404(request: HttpRequest, pk: UUID) -> Any:
    try:
        return selectors.access_request_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such access request.") from None


def _request_page(request: HttpRequest, pk: UUID, error: DomainError | None = None) -> HttpResponse:
    found = _request_or_404(request, pk)
    in_queue = selectors.access_request_list(user=request.user, awaiting_me=True).filter(pk=found.pk).exists()
    context = {
        "req": found,
        "state": found.state_at(timezone.now()),
        "slots": [(s, portal.slot_label(s)) for s in found.slots.all()],
        "awaited": portal.awaited(found),
        "may_decide": in_queue,
        "is_requester": found.requester_id == request.user.pk,
        "error": error,
    }
    return render(request, "frontend/access_request_detail.html", context, status=error.status if error else 200)


@login_required
def access_request_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _request_page(request, pk)


def _decide(request: HttpRequest, pk: UUID, verb: str) -> HttpResponse:
    found = _request_or_404(request, pk)
    try:
        if verb == "approve":
            requests_service.access_request_approve(
                actor=request.user, request=found, comment=request.POST.get("comment", "")
            )
        elif verb == "deny":
            requests_service.access_request_deny(
                actor=request.user, request=found, reason=request.POST.get("reason", "")
            )
        else:
            requests_service.access_request_withdraw(
                actor=request.user, request=found, reason=request.POST.get("reason", "")
            )
    except DomainError as exc:
        return _request_page(request, pk, exc)
    return redirect(_next(request, reverse("frontend:access-request-detail", args=[pk])))


@login_required
@require_POST
def access_request_approve(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _decide(request, pk, "approve")


@login_required
@require_POST
def access_request_deny(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _decide(request, pk, "deny")


@login_required
@require_POST
def access_request_withdraw(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _decide(request, pk, "withdraw")


@login_required
def approvals(request: HttpRequest) -> HttpResponse:
    queue = selectors.access_request_list(user=request.user, awaiting_me=True).order_by("expires_at")[:200]
    return render(request, "frontend/approvals.html", {"queue": [(r, portal.awaited(r)) for r in queue]})


@login_required
def grants_managed(request: HttpRequest, error: DomainError | None = None) -> HttpResponse:
    grants = portal.grants_on_my_datasets(user=request.user)[:500]
    rows = [(g, can_revoke(request.user, g)) for g in grants]
    return render(
        request, "frontend/grants_managed.html", {"rows": rows, "error": error}, status=error.status if error else 200
    )


@login_required
@require_POST
def grant_revoke_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    try:
        grant = selectors.grant_get(user=request.user, pk=pk)
    except NotFound:
        raise Http404("No such grant.") from None
    try:
        grant_revoke(actor=request.user, grant=grant, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        return grants_managed(request, exc)
    return redirect("frontend:grants-managed")


@login_required
@require_POST
def grant_reapprove_view(request: HttpRequest, pk: UUID) -> HttpResponse:
    """The holder asks for a suspended grant's re-approval; the new request's page follows."""
    try:
        grant = selectors.grant_get(user=request.user, pk=pk)
        created = requests_service.grant_reapproval_request(
            actor=request.user, grant=grant, justification=request.POST.get("justification", "")
        )
    except NotFound:
        raise Http404("No such grant.") from None
    except DomainError as exc:
        return my_access(request, exc)
    return redirect("frontend:access-request-detail", pk=created.pk)


@login_required
@require_POST
def grant_secret_view(request: HttpRequest, pk: UUID, kind: str) -> HttpResponse:
    """The holder gets a signed token (``kind="token"``) or a database login (``"credentials"``) for a grant,
    as the API's ``/grants/{id}/token`` and ``/credentials`` give. Post/Redirect/Get: the secret goes through
    the session to the next GET of My access, shown there once (``no-store``) and discarded."""
    try:
        if kind == "token":
            token, expires_at = grant_token_issue(actor=request.user, grant_id=pk)
            secret: dict[str, Any] = {"kind": "token", "token": token, "expires_at": expires_at}
        else:
            creds = grant_credentials_issue(actor=request.user, grant_id=pk)
            secret = {"kind": "credentials", "user": creds.user, "password": creds.password, "host": creds.host}
            secret |= {"port": creds.port, "database": creds.database, "valid_until": creds.valid_until}
    except NotFound:
        raise Http404("No grant of yours has this id.") from None
    except DomainError as exc:
        return my_access(request, exc)
    secret_stash(request, "my-access", secret)
    return redirect("frontend:my-access")
