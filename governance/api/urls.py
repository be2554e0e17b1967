from django.urls import path

from governance.api import views
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [path("me", views.MeView.as_view(), name="me"), *router.urls]
