from django.urls import path

from catalog.api import registry, views
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("tags", views.TagViewSet, basename="tag")
router.register("models", views.MLModelViewSet, basename="model")
router.register("model-versions", views.ModelVersionViewSet, basename="model-version")
router.register("deployments", registry.DeploymentViewSet, basename="deployment")
router.register("results", registry.ResultViewSet, basename="result")

urlpatterns = [
    path("search", views.SearchView.as_view(), name="search"),
    path("search/suggest", views.SuggestView.as_view(), name="search-suggest"),
    path("classification-levels", views.ClassificationLevelsView.as_view(), name="classification-levels"),
    *router.urls,
]
