from django.urls import path

from lineage.api import views
from lineage.api.datasets import DatasetLineageViewSet
from steward.api.routers import StewardRouter

# Lineage's reads of a dataset live at the catalog's dataset URLs (datasets/{id}/tags, explain, versions...).
router = StewardRouter()
router.register("datasets", DatasetLineageViewSet, basename="dataset")

urlpatterns = [
    path("lineage", views.LineageIngestView.as_view(), name="lineage-ingest"),
    path("lineage/batch", views.LineageBatchView.as_view(), name="lineage-batch"),
    path("lineage/inbox", views.InboxView.as_view(), name="lineage-inbox"),
    path("lineage/graph", views.LineageGraphView.as_view(), name="lineage-graph"),
    path("lineage/jobs/lookup", views.JobLookupView.as_view(), name="lineage-job-lookup"),
    path("lineage/jobs/<uuid:pk>", views.JobDetailView.as_view(), name="lineage-job"),
    path("lineage/namespaces", views.NamespaceProducerListView.as_view(), name="lineage-namespaces"),
    path(
        "lineage/namespaces/<uuid:pk>", views.NamespaceProducerDetailView.as_view(), name="lineage-namespace-producer"
    ),
    path("declassifications", views.DeclassificationListView.as_view(), name="declassification-list"),
    *[
        path(
            f"declassifications/<uuid:pk>/{name}",
            views.DeclassificationActionView.as_view(action=name),
            name=f"declassification-{name}",
        )
        for name in ("approve", "reject", "revoke")
    ],
    *router.urls,
]
