from django.urls import path

from governance.api.access import AccessRequestViewSet, GrantViewSet
from governance.api.audit import AuditCheckpointListView, AuditListView, AuditVerifyView
from governance.api.decisions import AuthorizeBatchView, AuthorizeView
from governance.api.policy import PolicyVersionDetailView, PolicyVersionListView, PolicyView
from steward.api.routers import StewardRouter

router = StewardRouter()
router.register("access-requests", AccessRequestViewSet, basename="access-request")
router.register("grants", GrantViewSet, basename="grant")

urlpatterns = [
    path("policy", PolicyView.as_view(), name="policy"),
    path("policy/versions", PolicyVersionListView.as_view(), name="policy-versions"),
    path("policy/versions/<int:version>", PolicyVersionDetailView.as_view(), name="policy-version"),
    path("authorize", AuthorizeView.as_view(), name="authorize"),
    path("authorize/batch", AuthorizeBatchView.as_view(), name="authorize-batch"),
    path("audit", AuditListView.as_view(), name="audit"),
    path("audit/verify", AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/checkpoints", AuditCheckpointListView.as_view(), name="audit-checkpoints"),
    *router.urls,
]
