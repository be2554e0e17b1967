from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from governance.views import jwks_view
from steward import health
from steward.api.exceptions import api_not_found
from steward.metrics import metrics_view

# With single sign-on, logging out of Steward ends the provider's session too (accounts.sso).
if settings.OIDC_ENABLED:
    from mozilla_django_oidc.views import OIDCLogoutView

    _logout_view = OIDCLogoutView.as_view()
else:
    _logout_view = auth_views.LogoutView.as_view()

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("catalog.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("lineage.api.urls")),
    path("", include("sources.api.urls")),
    path("", include("workspaces.api.urls")),
    path("", include("compliance.api.urls")),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path(".well-known/jwks.json", jwks_view, name="jwks"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", _logout_view, name="logout"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its script as a file, not inline: the Content-Security-Policy allows no inline script.
    # Its page keeps one inline <style> block, so this page alone also allows inline styles. A page for people:
    # logged out, they are sent to log in (the schema itself answers 401 to programs).
    path(
        "api/docs/",
        login_required(
            csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema"))
        ),
        name="api-docs",
    ),
    re_path(r"^api/", api_not_found),
    path("", include("frontend.urls")),
]

handler404 = "steward.api.exceptions.not_found"
handler500 = "steward.api.exceptions.server_error"

if settings.STEWARD_SERVE_STATIC:
    # The embedded mode's server serves the static files itself (from the apps and node_modules, no
    # collectstatic); a production deployment leaves STEWARD_SERVE_STATIC off and serves STATIC_ROOT in front.
    urlpatterns.append(
        re_path(rf"^{settings.STATIC_URL.lstrip('/')}(?P<path>.*)$", staticfiles_serve, {"insecure": True})
    )

if settings.OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))
