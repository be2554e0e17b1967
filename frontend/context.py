from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from governance.portal import awaiting_count
from steward.identity import roles_of


def steward(request: HttpRequest) -> dict[str, Any]:
    """Template context every page needs: the viewer's roles, whether single sign-on is on, and how many
    requests wait for their approval (counted only when a page shows it)."""
    user = getattr(request, "user", None)
    return {
        "steward_roles": sorted(roles_of(user)) if user is not None else [],
        "oidc_enabled": settings.OIDC_ENABLED,
        "approvals_waiting": SimpleLazyObject(lambda: awaiting_count(user)),
    }
