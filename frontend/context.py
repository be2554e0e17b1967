from typing import Any

from django.conf import settings
from django.http import HttpRequest

from steward.identity import roles_of


def steward(request: HttpRequest) -> dict[str, Any]:
    """Template context every page needs: the viewer's roles, and whether single sign-on is on."""
    user = getattr(request, "user", None)
    return {"steward_roles": sorted(roles_of(user)) if user is not None else [], "oidc_enabled": settings.OIDC_ENABLED}
