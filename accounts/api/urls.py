from django.urls import path

from accounts.api.views import ApiTokenViewSet, MeView
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me", MeView.as_view(), name="me"),
    *router.urls,
]
