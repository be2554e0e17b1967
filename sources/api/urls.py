from sources.api.views import SourceViewSet
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("sources", SourceViewSet, basename="source")

urlpatterns = [*router.urls]
