from steward.api.routers import StewardRouter
from workspaces.api.views import TemplateViewSet, WorkspaceViewSet

router = StewardRouter()
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("workspace-templates", TemplateViewSet, basename="workspace-template")

urlpatterns = [*router.urls]
