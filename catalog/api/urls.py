from django.urls import path

from catalog.api import datasets, ml, registry, search, tags
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("datasets", datasets.DatasetViewSet, basename="dataset")
router.register("tags", tags.TagViewSet, basename="tag")
router.register("models", ml.MLModelViewSet, basename="model")
router.register("model-versions", ml.ModelVersionViewSet, basename="model-version")
router.register("deployments", registry.DeploymentViewSet, basename="deployment")
router.register("results", registry.ResultViewSet, basename="result")

urlpatterns = [
    path("search", search.SearchView.as_view(), name="search"),
    path("search/suggest", search.SuggestView.as_view(), name="search-suggest"),
    path("classification-levels", search.ClassificationLevelsView.as_view(), name="classification-levels"),
    *router.urls,
]
